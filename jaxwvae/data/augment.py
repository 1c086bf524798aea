"""Training sets augmented with VAE reconstructions: the paper's Table 2 (section 4).

The paper merges 10,000 images reconstructed by the best ELBO_W (or ELBO_KL) model with
original training sets of 10,000, 20,000 and 60,000 images and measures a 3-layer CNN on
3,000 other test images. Which images are reconstructed is not stated; here it is a parameter:

- ``"originals"`` (default): the reconstructions are of images inside the original set, so
  the augmentation adds no image and no label the classifier did not already have, only the
  VAE's version of them. Needs ``augment <= min(sizes)``; works at 60,000.
- ``"others"``: the reconstructions are of training images outside every original set, so
  the VAE carries information from images the classifier never sees itself. Needs
  ``max(sizes) + augment <= len(train)``.

One seeded permutation of the training split orders everything: the original sets are its
nested prefixes, the reconstructed images are its first (``"originals"``) or last
(``"others"``) ``augment`` entries, the same images for every size. Reconstructions keep the
label of the image they came from. Test images come from the test split, which neither the
VAEs nor the classifiers train on.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxwvae.errors import UserError

SOURCES = ("originals", "others")
SPLIT_SEED = 0  # the permutation of the training split (and of the test split for the test subset)


class Plan(NamedTuple):
    """Indices into the training split: each size's originals and the reconstructed images."""

    originals: dict  # size -> int indices [size]
    reconstructed: np.ndarray  # int indices [augment], shared by every size
    test: np.ndarray  # int indices into the test split [test_size]


def plan(n_train: int, n_test: int, sizes, augment: int, test_size: int, *, source: str = "originals",
         seed: int = SPLIT_SEED) -> Plan:
    """Which training images are originals and which are reconstructed, per size; which test images."""
    sizes = sorted({int(s) for s in sizes})
    if not sizes or sizes[0] < 1:
        raise UserError(f"--sizes must be positive image counts, got {sizes}")
    if sizes[-1] > n_train:
        raise UserError(f"--sizes asks for {sizes[-1]} original images but the training split holds {n_train}: "
                        f"pass sizes up to {n_train}")
    if augment < 0:
        raise UserError(f"--augment must be >= 0, got {augment}")
    if not 1 <= test_size <= n_test:
        raise UserError(f"--classifier-test-size must be between 1 and the test split's {n_test} images, got {test_size}")
    if source not in SOURCES:
        raise UserError(f"unknown --augment-source {source!r}: use one of {', '.join(SOURCES)}")
    if source == "originals" and augment > sizes[0]:
        raise UserError(f"--augment-source originals reconstructs images of the smallest original set ({sizes[0]}), "
                        f"so --augment {augment} is too many: pass --augment {sizes[0]} or less, or "
                        f"--augment-source others")
    if source == "others" and sizes[-1] + augment > n_train:
        raise UserError(f"--augment-source others needs {sizes[-1]} originals + {augment} other images, more than "
                        f"the {n_train} training images: lower --sizes or --augment, or use --augment-source "
                        f"originals")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_train)
    recon = order[:augment] if source == "originals" else order[n_train - augment:]
    test = np.random.default_rng([seed, 1]).permutation(n_test)[:test_size]
    return Plan({s: order[:s] for s in sizes}, recon, test)


def merge(images, labels, originals, reconstructed_idx, reconstructions=None):
    """The training set of one cell: ``images[originals]`` plus the reconstructions, labels kept.

    Args:
      images, labels: the training split, ``[n, 28, 28]`` uint8 and ``[n]``.
      originals: indices of the original images.
      reconstructed_idx: indices of the images that were reconstructed.
      reconstructions: ``[len(reconstructed_idx), 28, 28]`` uint8, the VAE's versions of
        ``images[reconstructed_idx]`` in that order; None for the original set alone.

    Returns:
      ``(images, labels)``: the originals first, then the reconstructions with the labels of
      the images they came from.
    """
    x, y = images[originals], labels[originals]
    if reconstructions is None:
        return x, y
    reconstructions = np.asarray(reconstructions)
    if reconstructions.shape != (len(reconstructed_idx), *images.shape[1:]):
        raise ValueError(f"reconstructions must be {(len(reconstructed_idx), *images.shape[1:])}, "
                         f"got {reconstructions.shape}")
    return (np.concatenate([x, reconstructions.astype(images.dtype)]),
            np.concatenate([y, labels[reconstructed_idx]]))
