"""The compiled program of a run: ``jit(vmap(train_chunk))`` (or ``lax.map``) over a sharded replica axis.

:class:`Engine` builds the replica states (stacked on a leading axis and
sharded over the devices), compiles the chunk of steps once on abstract
arguments, runs it, and evaluates the trained replicas.
"""

from __future__ import annotations

import functools
import time

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxwvae.config import SweepConfig, grid
from jaxwvae.core import controllers, lambda_rule, objectives
from jaxwvae.core.models import VAE
from jaxwvae.engine import distributed, memory
from jaxwvae.engine.distributed import to_host
from jaxwvae.engine.plan import Plan, largest_divisor_at_most
from jaxwvae.errors import UserError
from jaxwvae.replica import train
from jaxwvae.replica.state import create_replica, optimizer

EVAL_BATCH = 1000


def device_rule(config: SweepConfig) -> lambda_rule.LambdaRule:
    """The rule fused into the compiled step: every rule some replica follows on the device.

    The ARIMA rule runs here with ``forecaster='device'``; on the host otherwise (the step keeps those
    replicas' λ and the host sets it). Replicas with the fixed rule keep λ₀.
    """
    used = {c.lambda_rule for c in grid.resolved_points(config)}
    rules = {}
    if "arima" in used and config.forecaster == "device":
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


def over_replicas(chunk, loop: str):
    """``chunk(state, images, order, first_batch)`` over the leading replica axis of states and orders."""
    if loop == "vmap":
        return jax.vmap(chunk, in_axes=(0, None, 0, None))

    def mapped(states, images, orders, first_batch):
        return jax.lax.map(lambda so: chunk(so[0], images, so[1], first_batch), (states, orders))

    return mapped


class Engine:
    """The compiled functions of one run and the stacked replica states they advance."""

    def __init__(self, config: SweepConfig, plan: Plan, in_dim: int):
        self.config, self.plan = config, plan
        devices = np.array(jax.devices())
        mesh = Mesh(devices, ("replica",))
        self.sharded = NamedSharding(mesh, PartitionSpec("replica"))
        self.replicated = NamedSharding(mesh, PartitionSpec())
        # the cap on σ is per replica (state.sigma_max), an argument of the model's call
        model = VAE(config.hidden, config.latent_dim, in_dim)
        create = functools.partial(create_replica, model=model, tx=optimizer(),
                                   objective=objectives.get(config.objective).fn,
                                   lambda_rule=device_rule(config), in_dim=in_dim)
        # Padding replicas (to fill every device) take seeds no real replica uses; they never show in results.
        self.table = grid.replica_table(config, plan.padded)
        self._create = jax.jit(jax.vmap(create), out_shardings=self.sharded)
        self._order = jax.jit(jax.vmap(train.epoch_order, in_axes=(0, None, None)), static_argnums=2,
                              out_shardings=self.sharded)
        self.loop = replica_loop(config)
        self._chunks = {n: jax.jit(over_replicas(functools.partial(train.train_chunk, n_steps=n,
                                                                   batch_size=config.batch_size), self.loop),
                                   donate_argnums=0, out_shardings=self.sharded)
                        for n in {plan.chunk, plan.remainder} - {0}}
        self._chunk = self._chunks[plan.chunk]
        self.compiled = {}  # steps -> compiled call

    def init_states(self):
        table = {k: distributed.put(v, self.sharded) for k, v in self.table.items()}
        return self._create(table.pop("seed"), table)

    def put_images(self, images_u8):
        return distributed.put(images_u8, self.replicated)

    def abstract_args(self, n_train: int, in_dim: int):
        """Shapes, dtypes and shardings of the chunk's arguments: nothing is allocated."""
        states = jax.eval_shape(self._create, jax.ShapeDtypeStruct((self.plan.padded,), np.int32),
                                {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in self.table.items()
                                 if k != "seed"})
        states = jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=self.sharded), states)
        images = jax.ShapeDtypeStruct((n_train, in_dim), np.uint8, sharding=self.replicated)
        orders = jax.ShapeDtypeStruct((self.plan.padded, n_train), np.int32, sharding=self.sharded)
        return states, images, orders

    def compile(self, n_train: int, in_dim: int) -> float:
        """Compile the chunk (and the remainder call, if any) on abstract arguments; return the seconds."""
        start = time.perf_counter()
        self._args = self.abstract_args(n_train, in_dim)
        self.compiled = {n: fn.lower(*self._args, np.int32(0)).compile() for n, fn in self._chunks.items()}
        return time.perf_counter() - start

    @property
    def compiled_chunk(self):
        return self.compiled.get(self.plan.chunk)

    def bytes_per_device(self) -> int | None:
        """XLA's memory figure of the largest compiled call (see ``jaxwvae.engine.memory``)."""
        sizes = [memory.compiled_bytes(c.memory_analysis()) for c in self.compiled.values()]
        sizes = [v for v in sizes if v is not None]
        return max(sizes) if sizes else None

    def orders(self, states, epoch):
        return self._order(states, epoch, self.plan.n_train)

    def run_chunk(self, states, images, orders, first_batch, steps: int | None = None):
        """``steps`` steps (default: the chunk) of every replica from batch ``first_batch`` of the epoch."""
        return self.compiled[steps or self.plan.chunk](states, images, orders, np.int32(first_batch))

    def metric_names(self) -> list[str]:
        """The names of the per-step metrics the chunk returns (from the trace :meth:`compile` made)."""
        _, metrics = jax.eval_shape(self._chunk, *self._args, np.int32(0))
        return sorted(metrics)

    def set_lam(self, states, lam):
        return states.replace(lam=distributed.put(np.asarray(lam, np.float32), self.sharded))

    def evaluate(self, states, images_u8) -> dict:
        """Per-replica metrics (per-image means) over ``images_u8`` (truncated to a whole number of batches)."""
        n = len(images_u8)
        batch = largest_divisor_at_most(n, EVAL_BATCH)
        if batch < EVAL_BATCH // 10:
            batch = min(n, EVAL_BATCH)
        n = n - n % batch
        return to_host(self._evaluate(batch)(states, self.put_images(images_u8[:n])))

    @functools.lru_cache(maxsize=None)  # noqa: B019 (one engine per run: the cache lives as long as it)
    def _evaluate(self, batch: int):
        evaluate = functools.partial(train.evaluate, batch_size=batch)
        if self.loop == "vmap":
            return jax.jit(jax.vmap(evaluate, in_axes=(0, None)))
        return jax.jit(lambda states, images: jax.lax.map(lambda s: evaluate(s, images), states))
