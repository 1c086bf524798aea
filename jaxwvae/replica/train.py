"""One replica's pure training and evaluation functions; the sweep vmaps them.

``train_step(state, x) -> (state, metrics)`` is the whole algorithm for one
seed. ``train_chunk`` runs ``n`` steps of one epoch with ``lax.scan`` over the
device-resident images, each replica reading them in its own order. Nothing
here is jitted or vmapped: the transforms are applied where they are called
(:mod:`jaxwvae.engine.program`), so a test can run one replica alone.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jaxwvae.core.keys import DATA_STREAM, EVAL_STREAM, STEP_STREAM, stream
from jaxwvae.data.pixels import to_float
from jaxwvae.replica.state import ReplicaState

# Every step records these per replica (the objective's own metrics come in addition).
STEP_METRICS = ("loss", "rec", "w2", "kl", "t_gap", "lam", "t_forecast")


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def train_step(state: ReplicaState, x) -> tuple[ReplicaState, dict]:
    """One Adam step on the batch ``x`` ``[batch, 784]`` (floats in [0, 1]), then the λ rule.

    The metrics are batch means per image: ``t_gap`` is ``T_t`` of the paper
    (see ``jaxwvae.losses.t_gap``), ``lam`` the λ this step used and
    ``t_forecast`` the forecast ``T̂_{t+1}`` made after it (NaN for the fixed rule).

    A replica whose loss, gradients or next λ are non-finite keeps its last
    good parameters, λ and forecaster state from then on, with
    ``diverged_step`` set and NaN metrics; its gradients enter Adam as zeros,
    so its moments stay finite (and decay: they are never used again). The
    check reads only what is known before the update, so XLA fuses the freeze
    into Adam's update instead of materialising the updated state and
    reducing over it (``benchmarks/lean_step.py``).
    """
    key = stream(state.key, STEP_STREAM, state.step)
    key_z, key_objective = jax.random.split(key)

    def loss_fn(params):
        outputs = state.apply_fn(params, x, key_z, state.sigma_max)
        return state.objective(x, outputs, state.lam, key_objective)

    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    lam, rule_state, t_forecast = state.lambda_rule.update(metrics, state.rule_state, state.lam,
                                                           state.rule_hyper)
    healthy = state.diverged_step < 0
    ok = healthy & jnp.isfinite(loss) & _all_finite(grads) & jnp.isfinite(lam)
    # A frozen replica's gradients enter Adam as zeros (finite), and its parameters ignore the update.
    grads = jax.tree_util.tree_map(lambda g: jnp.where(ok, g, 0.0), grads)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    keep = functools.partial(jax.tree_util.tree_map, lambda new, old: jnp.where(ok, new, old))  # small leaves
    new_state = state.replace(
        params=jax.tree_util.tree_map(lambda p, u: p + jnp.where(ok, u, 0.0), state.params, updates),
        opt_state=opt_state,
        lam=jnp.where(ok, lam, state.lam),
        rule_state=keep(rule_state, state.rule_state),
        diverged_step=jnp.where(healthy & ~ok, state.step, state.diverged_step).astype(jnp.int32),
        step=state.step + 1,
    )
    metrics = dict(metrics, lam=state.lam, t_forecast=t_forecast)
    metrics = {k: jnp.where(ok, v, jnp.nan) for k, v in metrics.items()}
    return new_state, metrics


def epoch_order(state: ReplicaState, epoch, n_examples: int):
    """The replica's permutation of the training set for ``epoch`` (depends only on its key)."""
    return jax.random.permutation(stream(state.key, DATA_STREAM, epoch), n_examples)


def train_chunk(state: ReplicaState, images_u8, order, first_batch, *, n_steps: int, batch_size: int):
    """``n_steps`` steps over batches ``first_batch, first_batch + 1, …`` of this epoch's ``order``.

    Args:
      state: one replica's state.
      images_u8: the training images, ``uint8 [N, 784]``, shared by all replicas.
      order: this replica's permutation of ``range(N)`` for the current epoch.
      first_batch: index of the first batch within the epoch (a traced int).

    Returns:
      ``(state, metrics)`` with each metric of shape ``[n_steps]``.
    """

    def body(state, i):
        idx = lax.dynamic_slice_in_dim(order, (first_batch + i) * batch_size, batch_size)
        return train_step(state, to_float(images_u8[idx]))

    return lax.scan(body, state, jnp.arange(n_steps))


def evaluate(state: ReplicaState, images_u8, *, batch_size: int) -> dict:
    """Per-image means of the objective's metrics over ``images_u8`` ``[N, 784]`` (N divisible by batch_size).

    ``z`` is sampled with a key fixed per replica and batch (the ``EVAL_STREAM``),
    so the numbers are reproducible.
    """
    n = images_u8.shape[0]
    batches = images_u8.reshape(n // batch_size, batch_size, -1)

    def one(i, x_u8):
        key_z, key_objective = jax.random.split(stream(state.key, EVAL_STREAM, i))
        x = to_float(x_u8)
        outputs = state.apply_fn(state.params, x, key_z, state.sigma_max)
        _, metrics = state.objective(x, outputs, state.lam, key_objective)
        return metrics

    metrics = lax.map(lambda args: one(*args), (jnp.arange(batches.shape[0]), batches))
    return jax.tree_util.tree_map(jnp.mean, metrics)
