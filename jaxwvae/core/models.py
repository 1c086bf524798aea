"""The paper's VAE: a 3-layer MLP encoder and a 3-layer MLP decoder (Flax linen).

Section 4 of the paper fixes "a 3-layer MLP architecture for both encoder and
decoder" and no widths. The defaults here are 784-512-256-(2 x 20) for the
encoder and 20-256-512-784 for the decoder: three dense layers each, the widths
of common MLP VAE baselines for MNIST; ``jaxwvae.config.SweepConfig`` records them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp


class VAEOutputs(NamedTuple):
    """What one forward pass gives the objectives; leading axes follow the input."""

    logits: jax.Array  # [..., d] decoder logits of p(x | z)
    mu: jax.Array  # [..., m]
    logvar: jax.Array  # [..., m], log sigma^2
    z: jax.Array  # [..., m], the reparameterised sample


def adjusted_relu(raw: jax.Array) -> jax.Array:
    """The paper's ReLU variant for ``logvar``: ``-relu(-raw) = min(raw, 0)``, so ``sigma <= 1``.

    Section 3: with every ``sigma <= 1``, ``T <= 0`` and ELBO_W >= ELBO_KL.
    """
    return -nn.relu(-raw)


class Encoder(nn.Module):
    """``x -> (mu, logvar)``: dense layers of ``hidden`` widths, then one dense layer to ``2 * latent_dim``."""

    hidden: Sequence[int]
    latent_dim: int
    sigma_max_one: bool = False

    @nn.compact
    def __call__(self, x, logvar_max=None):
        """``logvar_max`` (a traced scalar, e.g. per replica) caps ``logvar`` by ``min``; 0 equals the adjusted ReLU."""
        h = x
        for width in self.hidden:
            h = nn.relu(nn.Dense(width)(h))
        mu, logvar = jnp.split(nn.Dense(2 * self.latent_dim)(h), 2, axis=-1)
        if self.sigma_max_one:
            logvar = adjusted_relu(logvar)
        if logvar_max is not None:
            logvar = jnp.minimum(logvar, logvar_max)
        return mu, logvar


class Decoder(nn.Module):
    """``z -> logits``: dense layers of ``hidden`` widths, then one dense layer to ``out_dim``."""

    hidden: Sequence[int]
    out_dim: int

    @nn.compact
    def __call__(self, z):
        h = z
        for width in self.hidden:
            h = nn.relu(nn.Dense(width)(h))
        return nn.Dense(self.out_dim)(h)


class VAE(nn.Module):
    """Gaussian encoder, Bernoulli-logit decoder; the decoder mirrors the encoder's widths.

    Attributes:
      hidden: encoder widths, e.g. ``(512, 256)``; the decoder uses them reversed.
      latent_dim: ``m``, the size of ``z``.
      out_dim: pixels per image (784 for 28 x 28).
      sigma_max_one: apply :func:`adjusted_relu` to ``logvar`` (keeps ``sigma <= 1``).
    """

    hidden: Sequence[int] = (512, 256)
    latent_dim: int = 20
    out_dim: int = 784
    sigma_max_one: bool = False

    def setup(self):
        self.encoder = Encoder(tuple(self.hidden), self.latent_dim, self.sigma_max_one)
        self.decoder = Decoder(tuple(reversed(self.hidden)), self.out_dim)

    def __call__(self, x, key, logvar_max=None):
        """Encode ``x`` ``[..., d]``, draw ``z = mu + sigma * eps`` with ``key``, decode.

        ``logvar_max``: an optional cap on ``log σ²`` (+inf: none; 0: σ <= 1, as ``sigma_max_one``).
        """
        mu, logvar = self.encoder(x, logvar_max)
        eps = jax.random.normal(key, mu.shape, mu.dtype)
        z = mu + jnp.exp(0.5 * logvar) * eps
        return VAEOutputs(self.decoder(z), mu, logvar, z)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)
