"""One replica's training state: every leaf gains a leading seed axis in a sweep."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from flax.training import train_state

from jaxwvae.core.keys import INIT_STREAM, LAM_STREAM, stream
from jaxwvae.core.lambda_rule import LambdaRule, RuleHyper


class ReplicaState(train_state.TrainState):
    """Flax ``TrainState`` plus what the paper's sweep moves per replica.

    Attributes:
      key: the replica's PRNG key (raw ``uint32[2]``), fixed for the run; every
        draw folds in a stream id and a counter (:mod:`jaxwvae.core.keys`).
      lam: λ, the weight of the objective's matching term (an array, never a
        Python float, so changing it never retraces).
      lam_init: λ at step 0, kept for the report.
      rule_state: the λ rule's forecaster state (``jaxwvae.core.lambda_rule``).
      rule_hyper: the λ rule's hyperparameters (:class:`RuleHyper`), per replica.
      sigma_max: cap on every σ of the encoder (1 is the paper's adjusted ReLU, +inf none), per replica.
      diverged_step: ``-1`` while healthy, else the step at which the loss, a
        gradient or λ became non-finite; the replica is frozen from then on.
      objective: the per-batch objective ``(x, outputs, lam, key) -> (loss, metrics)`` (static).
      lambda_rule: the :class:`LambdaRule` applied after each step (static).

    The learning rate is a leaf of ``opt_state`` (``optax.inject_hyperparams``), per replica too.
    """

    key: jax.Array
    lam: jax.Array
    lam_init: jax.Array
    rule_state: Any
    rule_hyper: RuleHyper
    sigma_max: jax.Array
    diverged_step: jax.Array
    objective: Callable = struct.field(pytree_node=False)
    lambda_rule: LambdaRule = struct.field(pytree_node=False)


def optimizer() -> optax.GradientTransformation:
    """Adam whose learning rate is a leaf of its state, so replicas can differ in it."""
    return optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)


def create_replica(seed, hyper: dict, *, model, tx: optax.GradientTransformation, objective: Callable,
                   lambda_rule: LambdaRule, in_dim: int) -> ReplicaState:
    """The initial state of the replica of ``seed`` (an int32 scalar) with its point's values ``hyper``.

    ``hyper`` holds scalars (vmap over arrays: see :func:`jaxwvae.config.grid.replica_table`):
    ``lam_low``/``lam_high`` (λ₀ is ``lam_low`` when equal, else uniform on
    ``[lam_low, lam_high)`` from the replica's own key, so a seed's run does not
    depend on which other replicas share the sweep), ``learning_rate``,
    ``sigma_max`` and the fields of :class:`RuleHyper` (each named as its config field). ``tx`` is :func:`optimizer`'s
    transformation, made once per run (it is static metadata of the state).
    """
    key = jax.random.PRNGKey(seed)
    params = model.init(stream(key, INIT_STREAM), jnp.zeros((1, in_dim), jnp.float32),
                        stream(key, INIT_STREAM, 1))
    u = jax.random.uniform(stream(key, LAM_STREAM), (), jnp.float32)
    lam_low = jnp.asarray(hyper["lam_low"], jnp.float32)
    lam = jnp.where(hyper["lam_high"] > lam_low, lam_low + u * (hyper["lam_high"] - lam_low), lam_low)
    state = ReplicaState.create(
        apply_fn=model.apply,
        params=params,
        tx=tx,
        key=key,
        lam=lam,
        lam_init=lam,
        rule_state=lambda_rule.init(),
        rule_hyper=RuleHyper(*(jnp.asarray(hyper[f], jnp.int32 if f == "lambda_rule" else jnp.float32)
                               for f in RuleHyper._fields)),
        sigma_max=jnp.asarray(hyper["sigma_max"], jnp.float32),
        diverged_step=jnp.asarray(-1, jnp.int32),
        objective=objective,
        lambda_rule=lambda_rule,
    )
    opt_state = state.opt_state
    rates = dict(opt_state.hyperparams, learning_rate=jnp.asarray(hyper["learning_rate"], jnp.float32))
    return state.replace(opt_state=opt_state._replace(hyperparams=rates))


def hyperparameter(state: ReplicaState, name: str) -> jax.Array:
    """The value of the per-replica config field ``name`` in ``state`` (any leading replica axes).

    ``lam`` is the current λ, the λ rule's fields are in ``rule_hyper``, the learning rate
    in Adam's injected hyperparameters, ``sigma_max`` a leaf of its own.
    """
    if name == "lam":
        return state.lam
    if name == "sigma_max":
        return state.sigma_max
    if name == "learning_rate":
        return state.opt_state.hyperparams["learning_rate"]
    if name in RuleHyper._fields:
        return getattr(state.rule_hyper, name)
    raise ValueError(f"{name!r} is not a per-replica field of the state")


def with_hyperparameter(state: ReplicaState, name: str, value) -> ReplicaState:
    """``state`` with the per-replica field ``name`` set to ``value`` (same shape and dtype)."""
    value = jnp.asarray(value, hyperparameter(state, name).dtype)
    if name == "lam":
        return state.replace(lam=value)
    if name == "sigma_max":
        return state.replace(sigma_max=value)
    if name == "learning_rate":
        opt_state = state.opt_state
        rates = dict(opt_state.hyperparams, learning_rate=value)
        return state.replace(opt_state=opt_state._replace(hyperparams=rates))
    return state.replace(rule_hyper=state.rule_hyper._replace(**{name: value}))
