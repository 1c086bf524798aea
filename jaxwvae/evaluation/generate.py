"""Images from a finished sweep: samples from the prior and reconstructions, for every replica at once.

A run folder's final checkpoint holds every replica's parameters on a leading
axis; :func:`load_run` reads only them (:func:`jaxwvae.runs.checkpoint.restore_params`),
without rebuilding the training state.
Images are the decoder's mean, ``sigmoid(logits)``, in [0, 1].
"""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxwvae.config import SweepConfig, grid
from jaxwvae.core import keys as keys_lib
from jaxwvae.core.models import VAE
from jaxwvae.data.pixels import to_float
from jaxwvae.errors import UserError
from jaxwvae.runs import rundir
from jaxwvae.runs.checkpoint import restore_params


def load_run(out) -> tuple[SweepConfig, VAE, dict]:
    """``(config, model, params)`` of the finished run in ``out``; params carry a leading replica axis.

    Replicas are in results.json's order (grid points, then seeds): see :func:`jaxwvae.config.grid.replica_seeds`.
    """
    out = pathlib.Path(out)
    if not (out / rundir.RESULTS).exists():
        raise UserError(f"{out} holds no finished run (no {rundir.RESULTS}); run or resume the sweep first")
    config = SweepConfig.from_json(rundir.read_json(out / rundir.CONFIG)["config"])
    model = VAE(config.hidden, config.latent_dim, 784)  # reconstructions use μ, which no σ cap changes
    key = jax.random.PRNGKey(0)
    like = jax.eval_shape(model.init, key, jnp.zeros((1, 784), jnp.float32), key)  # the structure only
    params = jax.tree_util.tree_map(lambda x: x[: grid.replica_count(config)], restore_params(out, like))
    return config, model, params


@functools.partial(jax.jit, static_argnums=(0, 3))
def _decode_prior(model: VAE, params, keys, n: int):
    def one(p, key):
        z = jax.random.normal(key, (n, model.latent_dim))
        return jax.nn.sigmoid(model.apply(p, z, method=VAE.decode))

    return jax.vmap(one)(params, keys)


def sample_prior(model: VAE, params, seeds, n: int, *, chunk: int = 2000) -> np.ndarray:
    """``n`` images per replica decoded from ``z ~ N(0, I)``: float32 ``[replicas, n, 784]``.

    Replica ``k``'s draws come from its own seed, so they do not depend on the other replicas.
    """
    seeds = np.asarray(seeds)
    out = []
    for start in range(0, n, chunk):
        keys = jax.vmap(lambda s, c=start: keys_lib.stream(jax.random.PRNGKey(s), keys_lib.SAMPLE_STREAM, c))(
            jnp.asarray(seeds))
        out.append(np.asarray(_decode_prior(model, params, keys, min(chunk, n - start))))
    return np.concatenate(out, axis=1)


@functools.partial(jax.jit, static_argnums=0)
def _reconstruct(model: VAE, params, x):
    def one(p):
        mu, _ = model.apply(p, x, method=VAE.encode)
        return jax.nn.sigmoid(model.apply(p, mu, method=VAE.decode))

    return jax.vmap(one)(params)


def reconstruct(model: VAE, params, images_u8, *, chunk: int = 2000) -> np.ndarray:
    """Every replica's reconstruction ``decode(mu(x))`` of ``images_u8`` ``[n, 28, 28]`` or ``[n, 784]``.

    Returns float32 ``[replicas, n, 784]`` in [0, 1]. The code is the posterior mean, so the
    reconstruction is deterministic.
    """
    x = to_float(np.asarray(images_u8).reshape(len(images_u8), -1), xp=np)
    return np.concatenate([np.asarray(_reconstruct(model, params, x[i:i + chunk])) for i in range(0, len(x), chunk)],
                          axis=1)


def to_uint8(images) -> np.ndarray:
    """Float images in [0, 1] to uint8 ``[..., 28, 28]`` (rounded), the dtype of the datasets."""
    images = np.asarray(images)
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8).reshape(*images.shape[:-1], 28, 28)
