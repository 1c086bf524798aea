"""MNIST and Fashion-MNIST read natively from IDX files with numpy.

``load`` looks for the files in an explicit folder (``data_dir`` or
``$JAXWVAE_DATA_DIR``), then in the download cache, then downloads them
(checksum-verified), then tries ``tensorflow_datasets`` if it is installed.
Nothing heavy is imported at module import time.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import math
import os
import pathlib
import tempfile
import urllib.request
import zlib

import numpy as np

from jaxwvae.errors import DataError

__all__ = ["DATASETS", "SPLITS", "read_idx", "load", "download", "default_cache_dir"]

DATASETS = ("mnist", "fashion_mnist")
SPLITS = ("train", "test")

_LOG = logging.getLogger(__name__)

_FILES = {  # split -> (images file, labels file), uncompressed names
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_ALL_FILES = _FILES["train"] + _FILES["test"]

_MIRRORS = {  # official sources, in the order tried; each serves <name>.gz
    "mnist": (
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
    "fashion_mnist": (
        # S3 website endpoints serve plain http only; the SHA-256 check guards the content.
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ),
}

# SHA-256 of the decompressed IDX payload, so a recompressed copy still verifies.
_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

_IMAGES_MAGIC = 0x00000803
_LABELS_MAGIC = 0x00000801
_UBYTE = 0x08
_TYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32",
               0x0D: "float32", 0x0E: "float64"}
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
_FIX_FILE = "replace it with an intact copy of the official file (raw or .gz)"
_FIX_FIND = ("pass --data-dir DIR or set JAXWVAE_DATA_DIR to a folder holding the four IDX files "
             "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
             "t10k-labels-idx1-ubyte, each raw or .gz), or get internet access so they can be "
             "downloaded, or `pip install jaxwvae[tfds]`")


class _DownloadUnavailable(DataError):
    """The files could not be fetched or stored (network or disk), as opposed to a bad checksum."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def default_cache_dir() -> pathlib.Path:
    """The download cache folder.

    Returns:
        ``$JAXWVAE_CACHE_DIR`` if set and non-empty, else ``~/.cache/jaxwvae``.
    """
    env = os.environ.get("JAXWVAE_CACHE_DIR")
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path.home() / ".cache" / "jaxwvae"


# --------------------------------------------------------------------------- reading


def _open(path: pathlib.Path):
    """Open a file for binary reading, transparently decompressing gzip (detected by content)."""
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
                        f"the 4-byte magic number; {_FIX_FILE}")
    magic = int.from_bytes(head, "big")
    if head[0] != 0 or head[1] != 0:
        raise DataError(f"{path}: is not an IDX file: magic number 0x{magic:08X}, expected "
                        f"0x0000080N (first two bytes 0); {_FIX_FILE}")
    type_code, ndim = head[2], head[3]
    if type_code != _UBYTE:
        raise DataError(f"{path}: IDX type code 0x{type_code:02X} "
                        f"({_TYPE_NAMES.get(type_code, 'unknown')}), only 0x08 (unsigned byte) is "
                        f"supported; {_FIX_FILE}")
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions; {_FIX_FILE}")
    dims_raw = _read_exact(f, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header: {ndim} dimensions need {4 + 4 * ndim} header "
                        f"bytes, the file holds {4 + len(dims_raw)}; {_FIX_FILE}")
    shape = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
    size = math.prod(shape)
    try:
        out = np.empty(shape, dtype=np.uint8)
    except (MemoryError, ValueError) as e:
        raise DataError(f"{path}: the IDX header declares shape {shape} ({size} bytes), too large to "
                        f"hold in memory: a corrupt header?; {_FIX_FILE}") from e
    view = memoryview(out).cast("B") if size else memoryview(bytearray())
    got = 0
    while got < size:
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    if got < size:
        raise DataError(f"{path}: truncated IDX file: the header (shape {shape}) promises {size} data "
                        f"bytes, found {got}; {_FIX_FILE}")
    extra = len(f.read(1 << 16))  # also drives gzip to its end, where the CRC is checked
    if extra:
        raise DataError(f"{path}: IDX file is longer than its header says (shape {shape}, {size} data "
                        f"bytes, then at least {extra} more); {_FIX_FILE}")
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
        stream, raw = _open(path)
        with raw, stream:
            return _parse(stream, path)
    except DataError:
        raise
    except _GZIP_ERRORS as e:
        raise DataError(f"{path}: corrupt or truncated gzip file ({_one_line(e) or type(e).__name__}); "
                        f"{_FIX_FILE}") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or _one_line(e)}); check the path "
                        f"and its permissions") from e


def _read_kind(path: pathlib.Path, magic: int) -> np.ndarray:
    """``read_idx`` plus a check that the file is an IDX images (or labels) file."""
    arr = read_idx(path)
    found = 0x0800 | arr.ndim
    if found != magic:
        kind = "image" if magic == _IMAGES_MAGIC else "label"
        other = {_IMAGES_MAGIC: " (an IDX image file)", _LABELS_MAGIC: " (an IDX label file)"}.get(found, "")
        raise DataError(f"{path}: is not an IDX {kind} file: magic number 0x{found:08X}{other} "
                        f"({arr.ndim} dimensions), expected 0x{magic:08X}; check that the {kind}s "
                        f"file is the one given under this name")
    return arr


def _check_labels(labels: np.ndarray, where: str) -> None:
    bad = np.flatnonzero((labels < 0) | (labels > 9))
    if bad.size:
        bad = int(bad[0])
        raise DataError(f"{where}: label {int(labels[bad])} at index {bad} is outside 0..9; "
                        f"{_FIX_FILE}")


def _read_pair(images_path: pathlib.Path, labels_path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and cross-check an images file and its labels file."""
    images = _read_kind(images_path, _IMAGES_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28; "
                        f"{_FIX_FILE}")
    labels = _read_kind(labels_path, _LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                        f"{len(labels)} labels; the two files must come from the same split")
    _check_labels(labels, str(labels_path))
    return images, labels


# --------------------------------------------------------------------------- finding


def _locate(folder: pathlib.Path, name: str) -> pathlib.Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever is a file (raw first), else None."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _from_folder(root: pathlib.Path, dataset: str, split: str, origin: str):
    """Read a split from ``root/<dataset>/`` or ``root/``; a DataError if neither holds it."""
    img_name, lab_name = _FILES[split]
    fix = (f"put the files in {root / dataset} or {root}, or point --data-dir / JAXWVAE_DATA_DIR "
           f"at the folder that holds them (a given folder is used alone, without download)")
    if not root.is_dir():
        raise DataError(f"{origin} {root} is not a folder; {fix}")
    for folder in (root / dataset, root):
        img, lab = _locate(folder, img_name), _locate(folder, lab_name)
        if img and lab:
            return _read_pair(img, lab)
        if img or lab:
            have, missing = (img, lab_name) if img else (lab, img_name)
            raise DataError(f"{have} is there but its partner {missing}[.gz] is missing from {folder}; "
                            f"put the {split} files side by side")
    raise DataError(f"{origin} {root}: no {dataset} {split} files ({img_name}[.gz], {lab_name}[.gz]) in "
                    f"{root / dataset} or {root}; {fix}")


def _check_names(dataset: str, split: str | None = None) -> None:
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")


# --------------------------------------------------------------------------- downloading


def _payload_sha256(path: pathlib.Path) -> str | None:
    """SHA-256 of a file's decompressed content, or None if it cannot be read."""
    try:
        stream, raw = _open(path)
        with raw, stream:
            h = hashlib.sha256()
            while chunk := stream.read(1 << 20):
                h.update(chunk)
            return h.hexdigest()
    except (OSError, *_GZIP_ERRORS):
        return None


def _fetch(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _store(folder: pathlib.Path, name: str, content: bytes) -> pathlib.Path:
    """Write content to ``folder/name`` via a temp file and ``os.replace`` (never a partial file)."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, folder / name)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return folder / name


def download(dataset: str, cache_dir, *, base_url=None, timeout: float = 30.0) -> pathlib.Path:
    """Download the four IDX files of a dataset into ``cache_dir/<dataset>/`` and verify them.

    Files already there whose content verifies are kept. Each new file is
    checked against its SHA-256 (of the decompressed payload) before it is
    moved into place under its real name.

    Args:
        dataset: "mnist" or "fashion_mnist".
        cache_dir: cache root (None: ``default_cache_dir()``).
        base_url: fetch ``<base_url>/<dataset>/<name>.gz`` instead of the official
            mirrors (None: ``$JAXWVAE_DATA_URL`` if set, else the official ones).
        timeout: seconds per network operation.

    Returns:
        The folder ``cache_dir/<dataset>``.

    Raises:
        DataError: a checksum mismatch (naming the file and both digests), or,
            as a subclass, when no mirror could be reached or the cache is not writable.
    """
    _check_names(dataset)
    base_url = base_url or os.environ.get("JAXWVAE_DATA_URL") or None
    if base_url:
        bases = (f"{base_url.rstrip('/')}/{dataset}/",)
    else:
        bases = _MIRRORS[dataset]
    folder = pathlib.Path(cache_dir if cache_dir is not None else default_cache_dir()).expanduser() / dataset
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _DownloadUnavailable(f"cannot create the cache folder {folder} ({e.strerror or e}); "
                                   f"set JAXWVAE_CACHE_DIR to a writable folder") from e
    for name in _ALL_FILES:
        expected = _SHA256[dataset][name]
        present = _locate(folder, name)
        if present is not None:
            if _payload_sha256(present) == expected:
                continue
            present.unlink(missing_ok=True)  # a stale or damaged cache entry
        errors = []
        for base in bases:
            url = f"{base}{name}.gz"
            _LOG.info("downloading %s", url)
            try:
                content = _fetch(url, timeout)
                break
            except (OSError, http.client.HTTPException, ValueError) as e:
                errors.append(f"{url}: {_one_line(e) or type(e).__name__}")
        else:
            raise _DownloadUnavailable(f"could not download {dataset}/{name}.gz ({'; '.join(errors)})")
        try:
            actual = hashlib.sha256(gzip.decompress(content)).hexdigest()
        except _GZIP_ERRORS as e:
            raise DataError(f"{url}: the downloaded {name}.gz is not a valid gzip file "
                            f"({_one_line(e) or type(e).__name__}); nothing was saved. Check the "
                            f"download source (base url / $JAXWVAE_DATA_URL) or pass --data-dir") from e
        if actual != expected:
            raise DataError(f"{url}: checksum mismatch for {dataset}/{name}: expected SHA-256 {expected}, "
                            f"got {actual}; nothing was saved. The source serves a different file: check "
                            f"the download source (base url / $JAXWVAE_DATA_URL) or pass --data-dir")
        try:
            _store(folder, f"{name}.gz", content)
        except OSError as e:
            raise _DownloadUnavailable(f"cannot write into the cache folder {folder} "
                                       f"({e.strerror or e}); set JAXWVAE_CACHE_DIR to a writable "
                                       f"folder") from e
    return folder


_download = download  # ``load`` has a parameter named ``download``


# --------------------------------------------------------------------------- tfds


def _from_tfds(dataset: str, split: str, download: bool):
    """(images, labels) via tensorflow_datasets, or (None, why it did not work)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        return None, "tensorflow_datasets is not installed"
    except Exception as e:  # a broken TF install raises all sorts of things on import
        return None, f"importing tensorflow_datasets failed ({type(e).__name__}: {_one_line(e)})"
    try:
        ds = tfds.load(dataset, split=split, batch_size=-1, as_supervised=True, download=download)
        images, labels = tfds.as_numpy(ds)
    except Exception as e:  # tfds raises many types (network, missing data, TF errors)
        return None, f"tensorflow_datasets failed ({type(e).__name__}: {_one_line(e)})"
    images, labels = np.asarray(images), np.asarray(labels)
    where = f"tensorflow_datasets {dataset}/{split}"
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images.reshape(images.shape[:3])
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{where}: images have shape {images.shape}, expected [n, 28, 28, 1]; "
                        f"{_FIX_FIND}")
    if labels.shape != (len(images),):
        raise DataError(f"{where}: {len(images)} images but labels of shape {labels.shape}; {_FIX_FIND}")
    _check_labels(labels, where)
    return (images.astype(np.uint8, copy=False), labels.astype(np.uint8, copy=False)), None


# --------------------------------------------------------------------------- load


def load(dataset: str, split: str, data_dir=None, *, cache_dir=None, base_url=None, download: bool = True,
         timeout: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """Load one split of MNIST or Fashion-MNIST.

    Looks in ``data_dir`` (else ``$JAXWVAE_DATA_DIR``): ``<dir>/<dataset>/`` then
    ``<dir>/``, and fails at once if the files are not there. Without one, uses
    the cache ``cache_dir/<dataset>/``, then downloads into it (if ``download``),
    then tries tensorflow_datasets.

    Args:
        dataset: "mnist" or "fashion_mnist".
        split: "train" or "test".
        data_dir: folder holding the IDX files (raw or .gz); authoritative if given.
        cache_dir: download cache root (None: ``default_cache_dir()``).
        base_url: download from ``<base_url>/<dataset>/<name>.gz`` (None:
            ``$JAXWVAE_DATA_URL``, else the official mirrors).
        download: whether to download (and let tensorflow_datasets download).
        timeout: seconds per network operation.

    Returns:
        (images uint8 [n, 28, 28], labels uint8 [n]).

    Raises:
        DataError: bad names, malformed files, a checksum mismatch, or nothing found.
    """
    _check_names(dataset, split)
    if data_dir is not None and str(data_dir) != "":
        return _from_folder(pathlib.Path(data_dir).expanduser(), dataset, split, "data folder")
    env = os.environ.get("JAXWVAE_DATA_DIR")
    if env:
        return _from_folder(pathlib.Path(env).expanduser(), dataset, split, "$JAXWVAE_DATA_DIR")

    cache_root = pathlib.Path(cache_dir if cache_dir is not None else default_cache_dir()).expanduser()
    folder = cache_root / dataset
    names = _FILES[split]
    tried = ["no data folder given and $JAXWVAE_DATA_DIR unset", f"cache {folder} lacks the {split} files"]
    complete = all(_locate(folder, name) for name in names)
    if not complete and download:
        try:
            _download(dataset, cache_root, base_url=base_url, timeout=timeout)
            complete = True
        except _DownloadUnavailable as e:
            tried.append(f"download failed: {e}")
    elif not complete:
        tried.append("download disabled")
    if complete:
        try:
            return _read_pair(*(_locate(folder, name) for name in names))
        except DataError as e:
            raise DataError(f"{e} (cached copy: delete {folder} to download it again)") from e

    result, why = _from_tfds(dataset, split, download)
    if result is not None:
        return result
    tried.append(why)
    raise DataError(f"no {dataset} {split} data found: {'; '.join(tried)}. To fix: {_FIX_FIND}")
