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
OUTPUTS = (CONFIG, RESULTS, HISTORY, CHECKPOINTS)


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, allow_nan=True) + "\n").encode())


def write_npz(path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def read_json(path):
    with open(path) as f:
        return json.load(f)


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
