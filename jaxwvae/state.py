"""One replica's training state: every leaf gains a leading seed axis in a sweep."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from flax.training import train_state

from jaxwvae.lambda_rule import LambdaRule

# Streams derived from a replica's key with fold_in: nothing else draws from it.
INIT_STREAM, LAM_STREAM, DATA_STREAM, STEP_STREAM, EVAL_STREAM = range(5)


class ReplicaState(train_state.TrainState):
    """Flax ``TrainState`` plus what the paper's sweep moves per replica.

    Attributes:
      key: the replica's PRNG key (raw ``uint32[2]``), fixed for the run; every
        draw folds in a stream id and a counter (step or epoch).
      lam: λ, the weight of the objective's matching term (an array, never a
        Python float, so changing it never retraces).
      lam_init: λ at step 0, kept for the report.
      rule_state: the λ rule's forecaster state (``jaxwvae.lambda_rule``).
      diverged_step: ``-1`` while healthy, else the step at which the loss or a
        parameter became non-finite; the replica is frozen from then on.
      objective: the per-batch objective ``(x, outputs, lam, key) -> (loss, metrics)`` (static).
      lambda_rule: the :class:`LambdaRule` applied after each step (static).
    """

    key: jax.Array
    lam: jax.Array
    lam_init: jax.Array
    rule_state: Any
    diverged_step: jax.Array
    objective: Callable = struct.field(pytree_node=False)
    lambda_rule: LambdaRule = struct.field(pytree_node=False)


def stream(key, stream_id: int, counter=None):
    """The key of one stream (and counter) of a replica's key."""
    key = jax.random.fold_in(key, stream_id)
    return key if counter is None else jax.random.fold_in(key, counter)


def create_replica(seed, *, model, tx: optax.GradientTransformation, objective: Callable,
                   lambda_rule: LambdaRule, lam_low: float, lam_high: float, in_dim: int) -> ReplicaState:
    """The initial state of the replica of ``seed`` (an int32 scalar: vmap over an array of seeds).

    λ₀ is ``lam_low`` when ``lam_low == lam_high``, else uniform on
    ``[lam_low, lam_high)`` from the replica's own key, so a seed's run does
    not depend on which other seeds share the sweep.
    """
    key = jax.random.PRNGKey(seed)
    params = model.init(stream(key, INIT_STREAM), jnp.zeros((1, in_dim), jnp.float32),
                        stream(key, INIT_STREAM, 1))
    u = jax.random.uniform(stream(key, LAM_STREAM), (), jnp.float32)
    lam = jnp.asarray(lam_low, jnp.float32) + u * jnp.asarray(lam_high - lam_low, jnp.float32)
    return ReplicaState.create(
        apply_fn=model.apply,
        params=params,
        tx=tx,
        key=key,
        lam=lam,
        lam_init=lam,
        rule_state=lambda_rule.init(),
        diverged_step=jnp.asarray(-1, jnp.int32),
        objective=objective,
        lambda_rule=lambda_rule,
    )
