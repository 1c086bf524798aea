"""The dataset registry (MNIST, Fashion-MNIST: names, mirrors, checksums) and ``load``.

``load`` looks for the IDX files (:mod:`jaxwvae.data.idx`) in an explicit folder
(``data_dir`` or ``$JAXWVAE_DATA_DIR``), then in the download cache, then downloads them
(checksum-verified, :mod:`jaxwvae.data.cache`), then tries ``tensorflow_datasets`` if it is
installed. Nothing heavy is imported at module import time.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from jaxwvae.data import cache, idx
from jaxwvae.errors import DataError

__all__ = ["DATASETS", "SPLITS", "download", "load"]

DATASETS = ("mnist", "fashion_mnist")
SPLITS = ("train", "test")

MIRRORS = {  # official sources, in the order tried; each serves <name>.gz
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
SHA256 = {
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

FIX_FIND = ("pass --data-dir DIR or set JAXWVAE_DATA_DIR to a folder holding the four IDX files "
            "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
            "t10k-labels-idx1-ubyte, each raw or .gz), or get internet access so they can be "
            "downloaded, or `pip install jaxwvae[tfds]`")


def _check_names(dataset: str, split: str | None = None) -> None:
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")


def _from_folder(root: pathlib.Path, dataset: str, split: str, origin: str):
    """Read a split from ``root/<dataset>/`` or ``root/``; a DataError if neither holds it."""
    img_name, lab_name = idx.FILES[split]
    fix = (f"put the files in {root / dataset} or {root}, or point --data-dir / JAXWVAE_DATA_DIR "
           f"at the folder that holds them (a given folder is used alone, without download)")
    if not root.is_dir():
        raise DataError(f"{origin} {root} is not a folder; {fix}")
    for folder in (root / dataset, root):
        img, lab = idx.locate(folder, img_name), idx.locate(folder, lab_name)
        if img and lab:
            return idx.read_pair(img, lab)
        if img or lab:
            have, missing = (img, lab_name) if img else (lab, img_name)
            raise DataError(f"{have} is there but its partner {missing}[.gz] is missing from {folder}; "
                            f"put the {split} files side by side")
    raise DataError(f"{origin} {root}: no {dataset} {split} files ({img_name}[.gz], {lab_name}[.gz]) in "
                    f"{root / dataset} or {root}; {fix}")


def download(dataset: str, cache_dir, *, base_url=None, timeout: float = 30.0) -> pathlib.Path:
    """Download the four IDX files of a dataset into ``cache_dir/<dataset>/`` and verify them.

    Files already there whose content verifies are kept. Each new file is
    checked against its SHA-256 (of the decompressed payload) before it is
    moved into place under its real name.

    Args:
        dataset: "mnist" or "fashion_mnist".
        cache_dir: cache root (None: ``cache.default_cache_dir()``).
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
    bases = (f"{base_url.rstrip('/')}/{dataset}/",) if base_url else MIRRORS[dataset]
    return cache.fill(cache.cache_root(cache_dir) / dataset, SHA256[dataset], bases, label=dataset,
                      timeout=timeout)


_download = download  # ``load`` has a parameter named ``download``


def _from_tfds(dataset: str, split: str, download: bool):
    """(images, labels) via tensorflow_datasets, or (None, why it did not work)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        return None, "tensorflow_datasets is not installed"
    except Exception as e:  # a broken TF install raises all sorts of things on import
        return None, f"importing tensorflow_datasets failed ({type(e).__name__}: {idx.one_line(e)})"
    try:
        ds = tfds.load(dataset, split=split, batch_size=-1, as_supervised=True, download=download)
        images, labels = tfds.as_numpy(ds)
    except Exception as e:  # tfds raises many types (network, missing data, TF errors)
        return None, f"tensorflow_datasets failed ({type(e).__name__}: {idx.one_line(e)})"
    images, labels = np.asarray(images), np.asarray(labels)
    where = f"tensorflow_datasets {dataset}/{split}"
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images.reshape(images.shape[:3])
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{where}: images have shape {images.shape}, expected [n, 28, 28, 1]; "
                        f"{FIX_FIND}")
    if labels.shape != (len(images),):
        raise DataError(f"{where}: {len(images)} images but labels of shape {labels.shape}; {FIX_FIND}")
    idx.check_labels(labels, where)
    return (images.astype(np.uint8, copy=False), labels.astype(np.uint8, copy=False)), None


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
        cache_dir: download cache root (None: ``cache.default_cache_dir()``).
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

    root = cache.cache_root(cache_dir)
    folder = root / dataset
    names = idx.FILES[split]
    tried = ["no data folder given and $JAXWVAE_DATA_DIR unset", f"cache {folder} lacks the {split} files"]
    complete = all(idx.locate(folder, name) for name in names)
    if not complete and download:
        try:
            _download(dataset, root, base_url=base_url, timeout=timeout)
            complete = True
        except cache.DownloadUnavailable as e:
            tried.append(f"download failed: {e}")
    elif not complete:
        tried.append("download disabled")
    if complete:
        try:
            return idx.read_pair(*(idx.locate(folder, name) for name in names))
        except DataError as e:
            raise DataError(f"{e} (cached copy: delete {folder} to download it again)") from e

    result, why = _from_tfds(dataset, split, download)
    if result is not None:
        return result
    tried.append(why)
    raise DataError(f"no {dataset} {split} data found: {'; '.join(tried)}. To fix: {FIX_FIND}")
