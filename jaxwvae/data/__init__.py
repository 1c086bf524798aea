"""Datasets: MNIST and Fashion-MNIST from IDX folders, a download cache or tfds; Table 2's augmentation.

``jaxwvae.data.load`` and the names below come from the modules that own them: :mod:`~jaxwvae.data.datasets`
(the dataset registry :data:`DATASETS`, ``load``, ``download``), :mod:`~jaxwvae.data.idx` (reading IDX
files), :mod:`~jaxwvae.data.cache` (the download cache). Imports nothing of the package but
:mod:`jaxwvae.errors`.
"""

from jaxwvae.data.cache import default_cache_dir
from jaxwvae.data.datasets import DATASETS, SPLITS, download, load
from jaxwvae.data.idx import read_idx

__all__ = ["DATASETS", "SPLITS", "default_cache_dir", "download", "load", "read_idx"]
