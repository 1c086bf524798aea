"""pytorch-fid's FID InceptionV3 network in Flax linen, up to the 2048-d pool3 features.

This is the network that pytorch-fid 0.3.0 (``pytorch_fid/inception.py``) builds with
``InceptionV3([3], resize_input=True, normalize_input=True, use_fid_inception=True)``:
torchvision's Inception3 trunk with the FID patches (``FIDInceptionA``/``C``/``E_1`` average
pools that leave the zero padding out of the mean, and ``FIDInceptionE_2``'s max pool).
Layouts are NHWC; submodule names are the PyTorch attribute names, so the weights file maps
onto it by a rename and a transpose (:mod:`jaxwvae.evaluation.inception`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["FEATURE_DIM", "INPUT_SIZE", "FIDInceptionV3", "resize_bilinear_torch"]

INPUT_SIZE = 299
FEATURE_DIM = 2048
BN_EPS = 1e-3  # torchvision's BasicConv2d: nn.BatchNorm2d(out_channels, eps=0.001)

Pad = int | tuple[int, int]


# --------------------------------------------------------------------------------------
# Input handling: torch's F.interpolate(mode="bilinear", align_corners=False), explicitly.


def _linear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of torch's 1-d linear interpolation, align_corners=False.

    torch maps output index d to the source coordinate ``(d + 0.5) * in/out - 0.5``, clamps it
    below at 0, and blends pixels ``floor(src)`` and ``min(floor(src) + 1, in - 1)`` with
    weights ``1 - frac`` and ``frac``. No antialiasing, upsampling or downsampling alike.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    # torch's kernel computes ``scale * (d + 0.5) - 0.5`` in float32 with a fused multiply-add
    # (one rounding): the float64 product of these float32 operands is exact, so rounding the
    # float64 result once to float32 reproduces it bit for bit.
    d = np.arange(out_size, dtype=np.float64)
    src = (np.float64(scale) * (d + 0.5) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.int32), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    w1 = (src - i0.astype(np.float32)).astype(np.float32)
    w0 = (np.float32(1.0) - w1).astype(np.float32)
    return i0, i1, np.stack([w0, w1])


def resize_bilinear_torch(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Resize NHWC ``x`` to ``size`` as ``F.interpolate(mode='bilinear', align_corners=False)``.

    Gathers and blends (no matmul, so no reduced-precision dot on accelerators); the index
    tables are built with numpy at trace time, the shapes being static.
    """
    out_h, out_w = size
    _, in_h, in_w, _ = x.shape
    if (in_h, in_w) == (out_h, out_w):
        return x  # torch's kernel copies the input when the sizes agree
    h0, h1, wh = _linear_taps(in_h, out_h)
    v0, v1, wv = _linear_taps(in_w, out_w)
    x = x.astype(jnp.float32)
    wh, wv = wh[:, None, :, None, None], wv[:, None, None, :, None]  # [2, 1, h, 1, 1], [2, 1, 1, w, 1]
    rows = jnp.take(x, h0, axis=1) * wh[0] + jnp.take(x, h1, axis=1) * wh[1]
    return jnp.take(rows, v0, axis=2) * wv[0] + jnp.take(rows, v1, axis=2) * wv[1]


# --------------------------------------------------------------------------------------
# Pools with torch's semantics.


def _max_pool(x: jax.Array, window: int, stride: int, padding: int = 0) -> jax.Array:
    """``F.max_pool2d`` (floor mode): padding counts as -inf, never as a value."""
    pad = ((padding, padding), (padding, padding))
    return nn.max_pool(x, (window, window), strides=(stride, stride), padding=pad)


def _avg_pool_exclude_pad(x: jax.Array) -> jax.Array:
    """``F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)``."""
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


# --------------------------------------------------------------------------------------
# Blocks. Submodule names are the PyTorch attribute names.


def _pair(v: Pad) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


class BasicConv2d(nn.Module):
    """torchvision's BasicConv2d: conv (no bias) -> BatchNorm(eps=1e-3, inference) -> ReLU."""

    features: int
    kernel_size: Pad
    stride: int = 1
    padding: Pad = 0
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ph, pw = _pair(self.padding)
        x = nn.Conv(
            self.features,
            _pair(self.kernel_size),
            strides=(self.stride, self.stride),
            padding=((ph, ph), (pw, pw)),
            use_bias=False,
            precision=self.precision,
            name="conv",
        )(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name="bn")(x)
        return nn.relu(x)


class _Block(nn.Module):
    precision: Any = None

    def conv(self, name: str, features: int, kernel: Pad, stride: int = 1, padding: Pad = 0) -> Callable:
        return BasicConv2d(features, kernel, stride, padding, precision=self.precision, name=name)


class FIDInceptionA(_Block):
    """pytorch-fid's FIDInceptionA (Mixed_5b/c/d): InceptionA, avg pool excluding padding."""

    pool_features: int = 32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b1 = self.conv("branch1x1", 64, 1)(x)
        b5 = self.conv("branch5x5_1", 48, 1)(x)
        b5 = self.conv("branch5x5_2", 64, 5, padding=2)(b5)
        b3 = self.conv("branch3x3dbl_1", 64, 1)(x)
        b3 = self.conv("branch3x3dbl_2", 96, 3, padding=1)(b3)
        b3 = self.conv("branch3x3dbl_3", 96, 3, padding=1)(b3)
        bp = self.conv("branch_pool", self.pool_features, 1)(_avg_pool_exclude_pad(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(_Block):
    """torchvision's InceptionB (Mixed_6a), unpatched by pytorch-fid."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b3 = self.conv("branch3x3", 384, 3, stride=2)(x)
        bd = self.conv("branch3x3dbl_1", 64, 1)(x)
        bd = self.conv("branch3x3dbl_2", 96, 3, padding=1)(bd)
        bd = self.conv("branch3x3dbl_3", 96, 3, stride=2)(bd)
        bp = _max_pool(x, 3, 2)
        return jnp.concatenate([b3, bd, bp], axis=-1)


class FIDInceptionC(_Block):
    """pytorch-fid's FIDInceptionC (Mixed_6b..e): InceptionC, avg pool excluding padding."""

    channels_7x7: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c7 = self.channels_7x7
        b1 = self.conv("branch1x1", 192, 1)(x)
        b7 = self.conv("branch7x7_1", c7, 1)(x)
        b7 = self.conv("branch7x7_2", c7, (1, 7), padding=(0, 3))(b7)
        b7 = self.conv("branch7x7_3", 192, (7, 1), padding=(3, 0))(b7)
        bd = self.conv("branch7x7dbl_1", c7, 1)(x)
        bd = self.conv("branch7x7dbl_2", c7, (7, 1), padding=(3, 0))(bd)
        bd = self.conv("branch7x7dbl_3", c7, (1, 7), padding=(0, 3))(bd)
        bd = self.conv("branch7x7dbl_4", c7, (7, 1), padding=(3, 0))(bd)
        bd = self.conv("branch7x7dbl_5", 192, (1, 7), padding=(0, 3))(bd)
        bp = self.conv("branch_pool", 192, 1)(_avg_pool_exclude_pad(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(_Block):
    """torchvision's InceptionD (Mixed_7a), unpatched by pytorch-fid."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b3 = self.conv("branch3x3_1", 192, 1)(x)
        b3 = self.conv("branch3x3_2", 320, 3, stride=2)(b3)
        b7 = self.conv("branch7x7x3_1", 192, 1)(x)
        b7 = self.conv("branch7x7x3_2", 192, (1, 7), padding=(0, 3))(b7)
        b7 = self.conv("branch7x7x3_3", 192, (7, 1), padding=(3, 0))(b7)
        b7 = self.conv("branch7x7x3_4", 192, 3, stride=2)(b7)
        bp = _max_pool(x, 3, 2)
        return jnp.concatenate([b3, b7, bp], axis=-1)


class FIDInceptionE(_Block):
    """pytorch-fid's FIDInceptionE_1 (``pool="avg"``, Mixed_7b) and FIDInceptionE_2
    (``pool="max"``, Mixed_7c: a 3x3 stride-1 max pool where InceptionE has an average)."""

    pool: str = "avg"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b1 = self.conv("branch1x1", 320, 1)(x)
        b3 = self.conv("branch3x3_1", 384, 1)(x)
        b3 = jnp.concatenate(
            [
                self.conv("branch3x3_2a", 384, (1, 3), padding=(0, 1))(b3),
                self.conv("branch3x3_2b", 384, (3, 1), padding=(1, 0))(b3),
            ],
            axis=-1,
        )
        bd = self.conv("branch3x3dbl_1", 448, 1)(x)
        bd = self.conv("branch3x3dbl_2", 384, 3, padding=1)(bd)
        bd = jnp.concatenate(
            [
                self.conv("branch3x3dbl_3a", 384, (1, 3), padding=(0, 1))(bd),
                self.conv("branch3x3dbl_3b", 384, (3, 1), padding=(1, 0))(bd),
            ],
            axis=-1,
        )
        if self.pool == "avg":
            pooled = _avg_pool_exclude_pad(x)
        elif self.pool == "max":
            pooled = _max_pool(x, 3, 1, padding=1)
        else:
            raise ValueError(f"pool must be 'avg' or 'max', got {self.pool!r}")
        bp = self.conv("branch_pool", 192, 1)(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's ``InceptionV3([3])`` with FID Inception: images -> [n, 2048] pool3 features.

    ``images``: float NHWC in [0, 1], any height and width, 1 channel (repeated to RGB) or 3.
    They are resized to 299x299 as ``F.interpolate(..., mode='bilinear',
    align_corners=False)`` does, mapped to [-1, 1] by ``2 x - 1``, and run through the network
    with BatchNorm in inference mode (``jaxwvae.evaluation.inception.load_weights`` gives the
    variables; ``init`` gives random ones of the right shapes).

    ``precision`` goes to every convolution; the default, ``HIGHEST``, keeps float32 on
    accelerators whose default would round the inputs to TF32 or bfloat16.
    """

    precision: Any = lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(
                f"FIDInceptionV3 expects images of shape [n, height, width, 1 or 3] (NHWC), got {images.shape}"
            )
        x = resize_bilinear_torch(images.astype(jnp.float32), (INPUT_SIZE, INPUT_SIZE))
        x = 2.0 * x - 1.0
        if x.shape[-1] == 1:
            x = jnp.repeat(x, 3, axis=-1)

        p = self.precision

        def conv(name, features, kernel, stride=1, padding=0):
            return BasicConv2d(features, kernel, stride, padding, precision=p, name=name)

        # Block 0: input -> maxpool1 (64 channels, 73x73 at 299).
        x = conv("Conv2d_1a_3x3", 32, 3, stride=2)(x)
        x = conv("Conv2d_2a_3x3", 32, 3)(x)
        x = conv("Conv2d_2b_3x3", 64, 3, padding=1)(x)
        x = _max_pool(x, 3, 2)
        # Block 1: -> maxpool2 (192 channels, 35x35).
        x = conv("Conv2d_3b_1x1", 80, 1)(x)
        x = conv("Conv2d_4a_3x3", 192, 3)(x)
        x = _max_pool(x, 3, 2)
        # Block 2: -> the aux classifier's input (768 channels, 17x17).
        x = FIDInceptionA(pool_features=32, precision=p, name="Mixed_5b")(x)
        x = FIDInceptionA(pool_features=64, precision=p, name="Mixed_5c")(x)
        x = FIDInceptionA(pool_features=64, precision=p, name="Mixed_5d")(x)
        x = InceptionB(precision=p, name="Mixed_6a")(x)
        x = FIDInceptionC(channels_7x7=128, precision=p, name="Mixed_6b")(x)
        x = FIDInceptionC(channels_7x7=160, precision=p, name="Mixed_6c")(x)
        x = FIDInceptionC(channels_7x7=160, precision=p, name="Mixed_6d")(x)
        x = FIDInceptionC(channels_7x7=192, precision=p, name="Mixed_6e")(x)
        # Block 3: -> final average pool (2048 channels).
        x = InceptionD(precision=p, name="Mixed_7a")(x)
        x = FIDInceptionE(pool="avg", precision=p, name="Mixed_7b")(x)
        x = FIDInceptionE(pool="max", precision=p, name="Mixed_7c")(x)
        return jnp.mean(x, axis=(1, 2))  # AdaptiveAvgPool2d((1, 1)), flattened
