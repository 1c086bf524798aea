"""The download cache: where it is, fetching files from mirrors, checking their SHA-256, storing them whole.

Which files a dataset has, where they are served and their checksums are the dataset
registry's (:mod:`jaxwvae.data.datasets`); this module only fills a cache folder with them.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import pathlib
import tempfile
import urllib.request

from jaxwvae.data import idx
from jaxwvae.errors import DataError

_LOG = logging.getLogger(__name__)


class DownloadUnavailable(DataError):
    """The files could not be fetched or stored (network or disk), as opposed to a bad checksum."""


def default_cache_dir() -> pathlib.Path:
    """The download cache folder.

    Returns:
        ``$JAXWVAE_CACHE_DIR`` if set and non-empty, else ``~/.cache/jaxwvae``.
    """
    env = os.environ.get("JAXWVAE_CACHE_DIR")
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path.home() / ".cache" / "jaxwvae"


def cache_root(cache_dir) -> pathlib.Path:
    """``cache_dir`` as a path (None: :func:`default_cache_dir`)."""
    return pathlib.Path(cache_dir if cache_dir is not None else default_cache_dir()).expanduser()


def payload_sha256(path: pathlib.Path) -> str | None:
    """SHA-256 of a file's decompressed content, or None if it cannot be read."""
    try:
        stream, raw = idx.open_payload(path)
        with raw, stream:
            h = hashlib.sha256()
            while chunk := stream.read(1 << 20):
                h.update(chunk)
            return h.hexdigest()
    except (OSError, *idx.GZIP_ERRORS):
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


def fill(folder: pathlib.Path, sha256: dict[str, str], bases, *, label: str, timeout: float) -> pathlib.Path:
    """Make ``folder`` hold every file of ``sha256`` (name -> SHA-256 of its payload) whose content verifies.

    Files already there that verify are kept; a stale or damaged one is replaced. Each missing
    file is fetched as ``<base><name>.gz`` from the first of ``bases`` that answers and checked
    before it is moved into place under its real name. ``label`` (the dataset) names the files
    in messages.

    Raises:
        DataError: a checksum mismatch (naming the file and both digests), or,
            as :class:`DownloadUnavailable`, when no mirror could be reached or the folder is not writable.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadUnavailable(f"cannot create the cache folder {folder} ({e.strerror or e}); "
                                  f"set JAXWVAE_CACHE_DIR to a writable folder") from e
    for name, expected in sha256.items():
        present = idx.locate(folder, name)
        if present is not None:
            if payload_sha256(present) == expected:
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
                errors.append(f"{url}: {idx.one_line(e) or type(e).__name__}")
        else:
            raise DownloadUnavailable(f"could not download {label}/{name}.gz ({'; '.join(errors)})")
        try:
            actual = hashlib.sha256(gzip.decompress(content)).hexdigest()
        except idx.GZIP_ERRORS as e:
            raise DataError(f"{url}: the downloaded {name}.gz is not a valid gzip file "
                            f"({idx.one_line(e) or type(e).__name__}); nothing was saved. Check the "
                            f"download source (base url / $JAXWVAE_DATA_URL) or pass --data-dir") from e
        if actual != expected:
            raise DataError(f"{url}: checksum mismatch for {label}/{name}: expected SHA-256 {expected}, "
                            f"got {actual}; nothing was saved. The source serves a different file: check "
                            f"the download source (base url / $JAXWVAE_DATA_URL) or pass --data-dir")
        try:
            _store(folder, f"{name}.gz", content)
        except OSError as e:
            raise DownloadUnavailable(f"cannot write into the cache folder {folder} "
                                      f"({e.strerror or e}); set JAXWVAE_CACHE_DIR to a writable "
                                      f"folder") from e
    return folder
