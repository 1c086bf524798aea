"""The registry of training objectives that the one trainer shares.

An objective maps one batch's forward pass to a scalar loss (mean per image)
and the batch-mean metrics every run records. ``lam`` is the weight of the
objective's distribution-matching term; it is an array in each replica's
state, so changing it never retraces.

============  =====================================================  ===========
name          per-image loss                                          default λ
============  =====================================================  ===========
``w``         BCE(x, logits) + λ · W2²(q(z|x), N(0, I))   (ELBO_Wλ)    1
``kl``        BCE(x, logits) + λ · KL(q(z|x) ‖ N(0, I))   (ELBO_KL)    1
``wae``       0.05 · ‖x − sigmoid(logits)‖² + λ · MMD_IMQ(z, z̃)       10
============  =====================================================  ===========

ELBO_KL is the standard negative ELBO at λ = 1 (any other λ is a β-VAE).
WAE-MMD follows Tolstikhin et al. (2017) and their reference code's MNIST
settings: squared-L2 cost scaled by 0.05 on the decoder's mean image, λ = 10,
the IMQ kernel at scales 0.1 … 10, prior N(0, I); ``z`` is the Gaussian
encoder's reparameterised sample (their ``e_noise='gaussian'``) and ``z̃`` a
batch from the prior drawn with the step's key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxwvae import losses
from jaxwvae.core import names
from jaxwvae.core.models import VAEOutputs

METRICS = ("loss", "rec", "w2", "kl", "t_gap")


def _gaussian_terms(outputs: VAEOutputs) -> dict[str, jax.Array]:
    return {
        "w2": jnp.mean(losses.w2_squared(outputs.mu, outputs.logvar)),
        "kl": jnp.mean(losses.kl_divergence(outputs.mu, outputs.logvar)),
        "t_gap": jnp.mean(losses.t_gap(outputs.mu, outputs.logvar)),
    }


def _negative_elbo(x, outputs: VAEOutputs, lam, penalty: str):
    """Bernoulli reconstruction + λ · ``metrics[penalty]`` (``"w2"`` or ``"kl"``), with every metric."""
    metrics = _gaussian_terms(outputs)
    metrics["rec"] = jnp.mean(losses.bernoulli_nll(outputs.logits, x))
    metrics["loss"] = metrics["rec"] + lam * metrics[penalty]
    return metrics["loss"], metrics


def elbo_w(x, outputs: VAEOutputs, lam, key):
    """Negative ELBO_Wλ (paper, section 3): reconstruction + λ · W2²."""
    del key
    return _negative_elbo(x, outputs, lam, "w2")


def elbo_kl(x, outputs: VAEOutputs, lam, key):
    """Negative ELBO_KL (paper eq. 1): reconstruction + λ · KL, λ = 1 by default."""
    del key
    return _negative_elbo(x, outputs, lam, "kl")


WAE_COST_SCALE = 0.05  # the reference code's factor for the squared-L2 cost on MNIST


def wae_mmd(x, outputs: VAEOutputs, lam, key):
    """WAE-MMD (Tolstikhin et al. 2017): 0.05 · squared L2 + λ · MMD_IMQ against a prior batch."""
    metrics = _gaussian_terms(outputs)
    z_prior = jax.random.normal(key, outputs.z.shape, outputs.z.dtype)
    metrics["rec"] = WAE_COST_SCALE * jnp.mean(losses.squared_error(jax.nn.sigmoid(outputs.logits), x))
    metrics["mmd"] = losses.mmd_imq(outputs.z, z_prior)
    metrics["loss"] = metrics["rec"] + lam * metrics["mmd"]
    return metrics["loss"], metrics


class Objective(NamedTuple):
    """A registered objective: its function, the λ it uses unless told otherwise, and the metric λ weighs."""

    fn: Callable
    default_lam: float
    description: str
    term: str  # the metric λ multiplies: W2², KL or MMD


# keyed by ``jaxwvae.core.names.OBJECTIVES``, the one list of the names, in its order: w, kl, wae
OBJECTIVES: dict[str, Objective] = dict(zip(names.OBJECTIVES, (
    Objective(elbo_w, 1.0, "ELBO_W: cross-entropy + λ·W2² (Chen & Liu)", "w2"),
    Objective(elbo_kl, 1.0, "ELBO_KL: cross-entropy + KL (Kingma & Welling)", "kl"),
    Objective(wae_mmd, 10.0, "WAE-MMD: 0.05·L2² + λ·MMD_IMQ (Tolstikhin et al.)", "mmd"),
), strict=True))


def get(name: str) -> Objective:
    """The registered objective ``name``; a ValueError lists the valid names."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; choose one of {sorted(OBJECTIVES)}") from None
