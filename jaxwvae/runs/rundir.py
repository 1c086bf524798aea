"""The output folder of a run: what it holds, and writes that a kill cannot tear.

Every file is written to a temporary name in the same folder, flushed to disk
and renamed over the real name (``os.replace`` is atomic on POSIX), so a
reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import shutil
import tempfile

import numpy as np

from jaxwvae.errors import UserError

CONFIG = "config.json"
RESULTS = "results.json"
HISTORY = "history.npz"
CHECKPOINTS = "checkpoints"
UNREADABLE = "checkpoints-unreadable"  # checkpoints a resume could not read, moved aside
OUTPUTS = (CONFIG, RESULTS, HISTORY, CHECKPOINTS, UNREADABLE)


def file_mode() -> int:
    """The mode a file the user creates gets: 0o666 less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename; the file's mode as the umask decides."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())  # mkstemp's 0600 would hide the results from colleagues
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def strict(obj):
    """``obj`` with every NaN or ±inf (Python or NumPy scalar, at any depth) replaced by None.

    Strict JSON has no NaN/Infinity (``json.loads(..., parse_constant=...)``
    and most other languages' parsers reject them): an empty or undefined value
    is written as ``null``, and readers treat ``null`` as NaN where a number is
    expected (:func:`number`).
    """
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def number(value) -> float:
    """A number read from JSON: ``null`` (an empty or undefined value) becomes NaN."""
    return float("nan") if value is None else float(value)


def write_json(path, obj) -> None:
    """Strict JSON (non-finite numbers as ``null``), written atomically."""
    atomic_write_bytes(path, (json.dumps(strict(obj), indent=2, allow_nan=False) + "\n").encode())


def write_npz(path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def read_json(path):
    """The JSON in ``path``; a file that is not JSON is a UserError naming it."""
    try:
        with open(path) as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a JSON file this project wrote ({' '.join(str(e).split())}); "
                        f"restore it or start a new --out") from e


_NOT_METRICS = ("seed", "diverged", "diverged_step", "excluded", "reason")  # results.json's non-number fields


def read_results(path) -> dict:
    """A ``results.json``: every per-seed metric written as ``null`` (a diverged seed's) read back as NaN."""
    results = read_json(path)
    read_results_runs(results.get("runs", []))
    return results


def read_results_runs(runs: list[dict]) -> list[dict]:
    """results.json's ``runs`` entries with every metric written as ``null`` set to NaN, in place."""
    for run in runs:
        for key, value in run.items():
            if value is None and key not in _NOT_METRICS:
                run[key] = float("nan")
    return runs


def check(out, *, resume: bool = False, overwrite: bool = False) -> pathlib.Path:
    """Refuse an ``out`` that cannot receive this run, without touching anything.

    A folder that already holds a run's files is used only with ``resume``
    (continue it) or ``overwrite`` (delete those files first); anything else is
    a UserError, so no result is ever replaced silently.
    """
    out = pathlib.Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder; pass a folder path")
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if resume and not (out / CONFIG).exists():
        raise UserError(f"--resume: {out} holds no {CONFIG} of an earlier run; drop --resume to start a new run there")
    if existing and not (resume or overwrite):
        raise UserError(f"--out {out} already holds a run ({', '.join(existing)}); "
                        f"pass --resume to continue it, --overwrite to replace it, or another --out")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--out {out}: cannot write there ({parent} is not a writable folder); "
                        f"pass a folder you can write")
    return out


def prepare(out, *, resume: bool = False, overwrite: bool = False) -> pathlib.Path:
    """:func:`check`, then create ``out`` (deleting an earlier run's files with ``overwrite``)."""
    out = check(out, resume=resume, overwrite=overwrite)
    if overwrite and not resume:
        for name in OUTPUTS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test."):
            pass
    except OSError as e:
        raise UserError(f"--out {out}: cannot write there ({e.strerror or e}); pass a folder you can write") from e
    return out
