"""Datasets: MNIST and Fashion-MNIST from IDX folders, a download cache or tfds; Table 2's augmentation.

``jaxwvae.data.load`` and the names below are :mod:`jaxwvae.data.datasets`'s, the home of the
dataset registry (:data:`DATASETS`). Imports nothing of the package but :mod:`jaxwvae.errors`.
"""

from jaxwvae.data.datasets import DATASETS, SPLITS, default_cache_dir, download, load, read_idx

__all__ = ["DATASETS", "SPLITS", "default_cache_dir", "download", "load", "read_idx"]
