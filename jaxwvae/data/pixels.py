"""Pixels as the models read them: the datasets' uint8 grey levels as float32 in [0, 1]."""

from __future__ import annotations

import jax.numpy as jnp


def to_float(images_u8, xp=jnp):
    """uint8 pixels (any shape) to float32 grey levels in [0, 1]: ``images / 255``.

    ``xp`` is the array namespace (``jax.numpy`` inside compiled code, NumPy on the host).
    """
    return xp.asarray(images_u8).astype(xp.float32) / 255.0
