"""IDX files (the MNIST format) read natively with numpy: their names per split, parsing and validation.

Each file may be raw or gzipped (detected from its content); every format problem is a
:class:`~jaxwvae.errors.DataError` naming the file and the fix.
"""

from __future__ import annotations

import gzip
import math
import pathlib
import zlib

import numpy as np

from jaxwvae.errors import DataError

FILES = {  # split -> (images file, labels file), uncompressed names
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ALL_FILES = FILES["train"] + FILES["test"]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_UBYTE = 0x08
_TYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32",
               0x0D: "float32", 0x0E: "float64"}
GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
FIX_FILE = "replace it with an intact copy of the official file (raw or .gz)"


def one_line(text: object) -> str:
    """An exception's text on one line."""
    return " ".join(str(text).split())


def locate(folder: pathlib.Path, name: str) -> pathlib.Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever is a file (raw first), else None."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def open_payload(path: pathlib.Path):
    """``(stream, raw file)``: the file for binary reading, gzip decompressed (detected by content)."""
    f = open(path, "rb")
    try:
        is_gzip = f.read(2) == b"\x1f\x8b"
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb") if is_gzip else f, f
    except BaseException:
        f.close()
        raise


def _read_exact(f, n: int) -> bytes:
    """Up to n bytes (fewer only at end of file)."""
    chunks, got = [], 0
    while got < n:
        chunk = f.read(n - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _parse(f, path: pathlib.Path) -> np.ndarray:
    """Parse an IDX stream (see ``read_idx``); raises DataError on any format problem."""
    head = _read_exact(f, 4)
    if len(head) < 4:
        raise DataError(f"{path}: truncated IDX header: the file holds {len(head)} bytes, fewer than "
                        f"the 4-byte magic number; {FIX_FILE}")
    magic = int.from_bytes(head, "big")
    if head[0] != 0 or head[1] != 0:
        raise DataError(f"{path}: is not an IDX file: magic number 0x{magic:08X}, expected "
                        f"0x0000080N (first two bytes 0); {FIX_FILE}")
    type_code, ndim = head[2], head[3]
    if type_code != _UBYTE:
        raise DataError(f"{path}: IDX type code 0x{type_code:02X} "
                        f"({_TYPE_NAMES.get(type_code, 'unknown')}), only 0x08 (unsigned byte) is "
                        f"supported; {FIX_FILE}")
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions; {FIX_FILE}")
    dims_raw = _read_exact(f, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header: {ndim} dimensions need {4 + 4 * ndim} header "
                        f"bytes, the file holds {4 + len(dims_raw)}; {FIX_FILE}")
    shape = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
    size = math.prod(shape)
    try:
        out = np.empty(shape, dtype=np.uint8)
    except (MemoryError, ValueError) as e:
        raise DataError(f"{path}: the IDX header declares shape {shape} ({size} bytes), too large to "
                        f"hold in memory: a corrupt header?; {FIX_FILE}") from e
    view = memoryview(out).cast("B") if size else memoryview(bytearray())
    got = 0
    while got < size:
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    if got < size:
        raise DataError(f"{path}: truncated IDX file: the header (shape {shape}) promises {size} data "
                        f"bytes, found {got}; {FIX_FILE}")
    extra = len(f.read(1 << 16))  # also drives gzip to its end, where the CRC is checked
    if extra:
        raise DataError(f"{path}: IDX file is longer than its header says (shape {shape}, {size} data "
                        f"bytes, then at least {extra} more); {FIX_FILE}")
    return out


def read_idx(path) -> np.ndarray:
    """Read one IDX file of unsigned bytes, raw or gzipped.

    Args:
        path: file path (str or PathLike); gzip is detected from the content.

    Returns:
        A writable uint8 array with the shape the header declares.

    Raises:
        DataError: unreadable file, corrupt gzip, bad magic number or type
            code, or fewer/more data bytes than the header says.
    """
    path = pathlib.Path(path)
    try:
        stream, raw = open_payload(path)
        with raw, stream:
            return _parse(stream, path)
    except DataError:
        raise
    except GZIP_ERRORS as e:
        raise DataError(f"{path}: corrupt or truncated gzip file ({one_line(e) or type(e).__name__}); "
                        f"{FIX_FILE}") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or one_line(e)}); check the path "
                        f"and its permissions") from e


def _read_kind(path: pathlib.Path, magic: int) -> np.ndarray:
    """``read_idx`` plus a check that the file is an IDX images (or labels) file."""
    arr = read_idx(path)
    found = 0x0800 | arr.ndim
    if found != magic:
        kind = "image" if magic == IMAGES_MAGIC else "label"
        other = {IMAGES_MAGIC: " (an IDX image file)", LABELS_MAGIC: " (an IDX label file)"}.get(found, "")
        raise DataError(f"{path}: is not an IDX {kind} file: magic number 0x{found:08X}{other} "
                        f"({arr.ndim} dimensions), expected 0x{magic:08X}; check that the {kind}s "
                        f"file is the one given under this name")
    return arr


def check_labels(labels: np.ndarray, where: str) -> None:
    """A DataError naming the first label outside 0..9, if any."""
    bad = np.flatnonzero((labels < 0) | (labels > 9))
    if bad.size:
        bad = int(bad[0])
        raise DataError(f"{where}: label {int(labels[bad])} at index {bad} is outside 0..9; {FIX_FILE}")


def read_pair(images_path: pathlib.Path, labels_path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and cross-check an images file (28x28) and its labels file."""
    images = _read_kind(images_path, IMAGES_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28; "
                        f"{FIX_FILE}")
    labels = _read_kind(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                        f"{len(labels)} labels; the two files must come from the same split")
    check_labels(labels, str(labels_path))
    return images, labels
