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


def cap_logvar(logvar: jax.Array, sigma_max=None) -> jax.Array:
    """``min(logvar, 2 log sigma_max)``: every ``sigma <= sigma_max`` (None or +inf: no cap).

    ``sigma_max = 1`` is the paper's adjusted ReLU, ``-relu(-raw) = min(raw, 0)``
    (Section 3: with every ``sigma <= 1``, ``T <= 0`` and ELBO_W >= ELBO_KL).
    ``sigma_max`` may be traced (one per replica).
    """
    if sigma_max is None:
        return logvar
    return jnp.minimum(logvar, 2.0 * jnp.log(jnp.asarray(sigma_max, logvar.dtype)))


class Encoder(nn.Module):
    """``x -> (mu, logvar)``: dense layers of ``hidden`` widths, then one dense layer to ``2 * latent_dim``."""

    hidden: Sequence[int]
    latent_dim: int

    @nn.compact
    def __call__(self, x, sigma_max=None):
        """``sigma_max`` (a traced scalar, e.g. per replica) caps every σ (:func:`cap_logvar`)."""
        h = x
        for width in self.hidden:
            h = nn.relu(nn.Dense(width)(h))
        mu, logvar = jnp.split(nn.Dense(2 * self.latent_dim)(h), 2, axis=-1)
        return mu, cap_logvar(logvar, sigma_max)


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

    The cap on σ is an argument of the call, not an attribute, so replicas can differ in it.
    """

    hidden: Sequence[int] = (512, 256)
    latent_dim: int = 20
    out_dim: int = 784

    def setup(self):
        self.encoder = Encoder(tuple(self.hidden), self.latent_dim)
        self.decoder = Decoder(tuple(reversed(self.hidden)), self.out_dim)

    def __call__(self, x, key, sigma_max=None):
        """Encode ``x`` ``[..., d]``, draw ``z = mu + sigma * eps`` with ``key``, decode.

        ``sigma_max``: an optional cap on every σ (+inf or None: none; 1: the paper's adjusted ReLU).
        """
        mu, logvar = self.encoder(x, sigma_max)
        eps = jax.random.normal(key, mu.shape, mu.dtype)
        z = mu + jnp.exp(0.5 * logvar) * eps
        return VAEOutputs(self.decoder(z), mu, logvar, z)

    def encode(self, x, sigma_max=None):
        return self.encoder(x, sigma_max)

    def decode(self, z):
        return self.decoder(z)
