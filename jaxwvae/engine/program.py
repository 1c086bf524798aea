"""The compiled program of a run: ``jit(vmap(train_chunk))`` (or ``lax.map``) over a sharded replica axis.

:meth:`Program.compile` compiles the chunk of steps (and the epoch's shorter
remainder call, if any) once, on abstract arguments, and returns a frozen
:class:`Program`: the compiled calls by step count, the metric names they
return and XLA's memory figure, with what creates the replica states (stacked
on a leading axis and sharded over the devices), runs a call and evaluates the
trained replicas. :func:`over_replicas` is the one place that chooses between
``vmap`` and ``lax.map`` over the replicas, for training and evaluation alike.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding

from jaxwvae.config import SweepConfig, grid
from jaxwvae.core import controllers, lambda_rule, objectives
from jaxwvae.core.models import VAE
from jaxwvae.devices import distributed, memory
from jaxwvae.engine.plan import Plan, largest_divisor_at_most
from jaxwvae.errors import UserError
from jaxwvae.replica import train
from jaxwvae.replica.state import create_replica, optimizer

EVAL_BATCH = 1000
CHUNK_AXES = (0, None, 0, None)  # train_chunk(state, images, order, first_batch): state and order per replica


def device_rule(config: SweepConfig, plan: Plan) -> lambda_rule.LambdaRule:
    """The rule fused into the compiled step: every rule some replica follows on the device.

    The ARIMA rule runs here unless λ moves on the host (``plan.host_lambda``: the step then keeps
    those replicas' λ and the host sets it). Replicas with the fixed rule keep λ₀.
    """
    used = {c.lambda_rule for c in grid.resolved_points(config)}
    rules = {}
    if "arima" in used and not plan.host_lambda:
        rules["arima"] = lambda_rule.arima(config.arima_order)
    if "pi" in used:
        rules["pi"] = controllers.pi(config.pi_quantity)
    if "geco" in used:
        rules["geco"] = controllers.geco()
    return lambda_rule.select(rules)


def replica_loop(config: SweepConfig) -> str:
    """``vmap`` or ``map`` (see ``SweepConfig.replica_loop``); ``auto`` is ``map`` on one CPU device."""
    if config.replica_loop != "auto":
        if config.replica_loop == "map" and jax.device_count() > 1:
            raise UserError("--replica-loop map runs the replicas one after another on one device; "
                            f"this run has {jax.device_count()} devices: use --replica-loop vmap or auto")
        return config.replica_loop
    return "map" if jax.devices()[0].platform == "cpu" and jax.device_count() == 1 else "vmap"


def over_replicas(fn: Callable, loop: str, in_axes: tuple) -> Callable:
    """``fn`` over the leading replica axis of the arguments whose ``in_axes`` is 0; those with None are shared.

    ``loop="vmap"`` batches the replicas into one computation (``jax.vmap``);
    ``"map"`` runs them one after another in one compiled loop (``lax.map``).
    """
    if loop == "vmap":
        return jax.vmap(fn, in_axes=in_axes)

    def mapped(*args):
        def one(per_replica):
            rest = iter(per_replica)
            return fn(*(next(rest) if axis == 0 else a for a, axis in zip(args, in_axes)))

        return jax.lax.map(one, tuple(a for a, axis in zip(args, in_axes) if axis == 0))

    return mapped


def _evaluation_batch(n: int) -> tuple[int, int]:
    """``(batch, images used)`` of an evaluation of ``n`` images: a divisor near ``EVAL_BATCH``, whole batches."""
    batch = largest_divisor_at_most(n, EVAL_BATCH)
    if batch < EVAL_BATCH // 10:
        batch = min(n, EVAL_BATCH)
    return batch, n - n % batch


@functools.lru_cache(maxsize=None)
def _evaluator(loop: str, batch: int) -> Callable:
    """``jit`` of :func:`jaxwvae.replica.train.evaluate` over the replicas, in batches of ``batch`` images."""
    return jax.jit(over_replicas(functools.partial(train.evaluate, batch_size=batch), loop, (0, None)))


@dataclasses.dataclass(frozen=True, eq=False)
class Program:
    """One run compiled: its calls by step count over the sharded replica axis, and what they take and give.

    ``calls[n](states, images, orders, first_batch) -> (states, metrics)``
    advances every replica ``n`` steps of an epoch from batch ``first_batch``
    (the states are donated); ``metrics`` maps each of ``metric_names`` to
    ``[replicas, n]``. Made by :meth:`compile` only.
    """

    config: SweepConfig
    plan: Plan
    loop: str  # "vmap" or "map" over the replicas (replica_loop)
    table: dict  # per-replica seeds, grid points and hyperparameters, padding included (grid.replica_table)
    calls: Mapping[int, jax.stages.Compiled]  # steps -> compiled call: plan.chunk, and plan.remainder if any
    metric_names: tuple[str, ...]  # the per-step metrics every call returns, sorted
    bytes_per_device: int | None  # XLA's figure of the largest call (jaxwvae.devices.memory.compiled_bytes)
    compile_s: float  # seconds spent compiling
    sharded: NamedSharding  # the replica axis split over the devices
    replicated: NamedSharding  # a whole copy on every device
    abstract_states: Any = dataclasses.field(repr=False)  # the states' shapes, dtypes and shardings
    create_states: Callable = dataclasses.field(repr=False)  # jit: (seeds, table) -> stacked states
    epoch_order: Callable = dataclasses.field(repr=False)  # jit: (states, epoch, n_train) -> each replica's order

    def init_states(self):
        """Every replica's initial state, stacked on the leading axis and sharded over the devices."""
        table = {k: distributed.put(v, self.sharded) for k, v in self.table.items()}
        return self.create_states(table.pop("seed"), table)

    def put_images(self, images_u8):
        """The training images, whole on every device."""
        return distributed.put(images_u8, self.replicated)

    def orders(self, states, epoch: int):
        """Each replica's order of the training images in ``epoch``, ``[replicas, n_train]``."""
        return self.epoch_order(states, epoch, self.plan.n_train)

    def run(self, states, images, orders, first_batch: int, steps: int | None = None):
        """``steps`` steps (default: the chunk) of every replica from batch ``first_batch`` of the epoch."""
        return self.calls[steps or self.plan.chunk](states, images, orders, np.int32(first_batch))

    def set_lam(self, states, lam):
        """The states with every replica's λ replaced by ``lam``, ``(replicas,)``."""
        return states.replace(lam=distributed.put(np.asarray(lam, np.float32), self.sharded))

    def evaluate(self, states, images_u8) -> dict:
        """Per-replica metrics (per-image means) over ``images_u8`` (truncated to a whole number of batches)."""
        batch, n = _evaluation_batch(len(images_u8))
        return distributed.to_host(_evaluator(self.loop, batch)(states, self.put_images(images_u8[:n])))

    def evaluation(self, n_images: int, in_dim: int) -> tuple[Callable, int | None]:
        """:meth:`evaluate` of ``n_images`` images compiled on abstract arguments, and its bytes per device.

        Returns ``(fn, bytes)``: ``fn(states, images_u8)`` gives :meth:`evaluate`'s metrics;
        ``bytes`` is XLA's figure (:func:`jaxwvae.devices.memory.compiled_bytes`), the images included.
        """
        batch, n = _evaluation_batch(n_images)
        images = jax.ShapeDtypeStruct((n, in_dim), np.uint8, sharding=self.replicated)
        compiled = _evaluator(self.loop, batch).lower(self.abstract_states, images).compile()

        def fn(states, images_u8):
            return distributed.to_host(compiled(states, self.put_images(images_u8[:n])))

        return fn, memory.compiled_bytes(compiled.memory_analysis())

    @classmethod
    def compile(cls, config: SweepConfig, plan: Plan, in_dim: int) -> Program:
        """Compile the run's calls on abstract arguments (shapes, dtypes, shardings: nothing is allocated)."""
        start = time.perf_counter()
        sharded, replicated = distributed.replica_shardings()
        # the cap on σ is per replica (state.sigma_max), an argument of the model's call
        model = VAE(config.hidden, config.latent_dim, in_dim)
        create = jax.jit(jax.vmap(functools.partial(create_replica, model=model, tx=optimizer(),
                                                    objective=objectives.get(config.objective).fn,
                                                    lambda_rule=device_rule(config, plan), in_dim=in_dim)),
                         out_shardings=sharded)
        # Padding replicas (to fill every device) take seeds no real replica uses; they never show in results.
        table = grid.replica_table(config, plan.padded)
        states = jax.eval_shape(create, jax.ShapeDtypeStruct((plan.padded,), np.int32),
                                {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in table.items() if k != "seed"})
        states = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharded), states)
        images = jax.ShapeDtypeStruct((plan.n_train, in_dim), np.uint8, sharding=replicated)
        orders = jax.ShapeDtypeStruct((plan.padded, plan.n_train), np.int32, sharding=sharded)
        loop = replica_loop(config)
        lowered = {}
        for n in sorted({plan.chunk, plan.remainder} - {0}):
            chunk = functools.partial(train.train_chunk, n_steps=n, batch_size=config.batch_size)
            lowered[n] = jax.jit(over_replicas(chunk, loop, CHUNK_AXES), donate_argnums=0,
                                 out_shardings=sharded).lower(states, images, orders, np.int32(0))
        calls = {n: low.compile() for n, low in lowered.items()}
        sizes = [memory.compiled_bytes(c.memory_analysis()) for c in calls.values()]
        sizes = [v for v in sizes if v is not None]
        _, metrics = lowered[plan.chunk].out_info
        order = jax.jit(jax.vmap(train.epoch_order, in_axes=(0, None, None)), static_argnums=2, out_shardings=sharded)
        return cls(config=config, plan=plan, loop=loop, table=table, calls=calls, metric_names=tuple(sorted(metrics)),
                   bytes_per_device=max(sizes) if sizes else None, compile_s=time.perf_counter() - start,
                   sharded=sharded, replicated=replicated, abstract_states=states, create_states=create,
                   epoch_order=order)
