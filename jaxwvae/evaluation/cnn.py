"""The paper's small CNN for 28 x 28 images, as a Flax module (no training here).

Two weight layers of 3x3 convolutions with 2x2 max pooling, an optional hidden
dense layer, and the class logits: the Table-2 classifier has no hidden layer,
the FID feature network a 128-wide one. Its input: float images in [0, 1]
shaped ``[..., 28, 28]``, ``[..., 28, 28, 1]`` or ``[..., 784]``. Training,
evaluation and the cached FID network are in :mod:`jaxwvae.evaluation.classifier`.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

__all__ = ["CNN", "Conv3x3", "TABLE2_HIDDEN", "lead_shape"]

TABLE2_HIDDEN = None  # the Table-2 classifier: conv, conv, dense-10 (see CNN)


def lead_shape(shape) -> tuple:
    """The leading axes of an image array ``[..., 28, 28]``, ``[..., 28, 28, 1]`` or ``[..., 784]``."""
    shape = tuple(shape)
    if shape[-1:] == (784,):
        return shape[:-1]
    if shape[-3:] == (28, 28, 1):
        return shape[:-3]
    if shape[-2:] == (28, 28):
        return shape[:-2]
    raise ValueError(f"images must be [..., 28, 28], [..., 28, 28, 1] or [..., 784], got shape {shape}")


class Conv3x3(nn.Module):
    """A 3x3, stride-1, SAME-padded convolution, parameters as ``nn.Conv``'s (``kernel [3, 3, in, out]``).

    Two computations of the same function (equal up to float rounding):
    ``im2col=True`` multiplies the 3x3 patches by the flattened kernel, so that
    vmapped over seeds it becomes a batched matrix product (XLA turns a
    convolution with batched kernels into a grouped convolution, ~2.5x slower
    per seed on CPU); ``im2col=False`` calls ``lax.conv_general_dilated``,
    ~3x faster on CPU for a single kernel, as in evaluation.
    """

    features: int
    im2col: bool = True

    @nn.compact
    def __call__(self, x):
        n, height, width, channels = x.shape
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, channels, self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,)).reshape(1, 1, 1, -1)
        if not self.im2col:
            return lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias
        padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        patches = jnp.concatenate(
            [padded[:, i:i + height, j:j + width, :] for i in range(3) for j in range(3)], axis=-1)
        return patches @ kernel.reshape(9 * channels, self.features) + bias


def _max_pool_2x2(h):
    """``nn.max_pool(h, (2, 2), strides=(2, 2))`` for even sizes, as a reshape and a max."""
    n, height, width, channels = h.shape
    return jnp.max(h.reshape(n, height // 2, 2, width // 2, 2, channels), axis=(2, 4))


class CNN(nn.Module):
    """The paper's small CNN for 28 x 28 images.

    Conv(32, 3x3, SAME)-ReLU-MaxPool(2) -> Conv(64, 3x3, SAME)-ReLU-MaxPool(2)
    -> [Dense(hidden)-ReLU] -> Dense(10).

    Weight layers: conv1, conv2, (hidden), out, i.e. 3 with ``hidden=None``
    and 4 with a ``hidden`` width; pooling and ReLU carry no weights.

    The paper's Table-2 classifier is "a 3-layer CNN" with no further detail.
    Counting layers with weights, as is usual (LeNet-5 has five), that is
    conv, conv, dense-10: ``hidden=None`` (:data:`TABLE2_HIDDEN`), the literal
    reading (97.3% on the MNIST test set after 5 epochs of 10,000 images; a
    128-wide hidden layer gives 97.7% in the same setting). The FID network adds a
    128-wide hidden layer (``classifier.FEATURE_HIDDEN``) because a Fréchet distance
    needs a low-dimensional feature space: the flattened conv features are
    3,136-d, and their covariance could not be estimated from a few thousand
    images.

    Attributes:
      hidden: width of the penultimate dense layer, or None for none.
      num_classes: outputs of the last layer.
      im2col: how the convolutions are computed (same function and
        parameters, see :class:`Conv3x3`): True for training vmapped over
        seeds, False for one network at a time.
    """

    hidden: int | None = TABLE2_HIDDEN
    num_classes: int = 10
    im2col: bool = True

    @nn.compact
    def __call__(self, x, *, features: bool = False):
        """Logits ``[..., num_classes]`` of float images ``x`` in [0, 1] (shapes: module docstring).

        With ``features=True``, the penultimate activations instead: the
        ``hidden``-d ReLU layer, or the 3,136 flattened conv features when
        ``hidden`` is None.
        """
        lead = lead_shape(jnp.shape(x))
        h = jnp.reshape(x, (-1, 28, 28, 1))
        h = _max_pool_2x2(nn.relu(Conv3x3(32, self.im2col, name="conv1")(h)))
        h = _max_pool_2x2(nn.relu(Conv3x3(64, self.im2col, name="conv2")(h)))
        h = h.reshape(h.shape[0], -1)
        if self.hidden is not None:
            h = nn.relu(nn.Dense(self.hidden, name="hidden")(h))
        if not features:
            h = nn.Dense(self.num_classes, name="out")(h)
        return h.reshape(lead + h.shape[-1:])
