"""Every seed of a sweep in one compiled program: ``jit(vmap(train_chunk))`` over a replica axis.

``run(config, out)`` is the whole job behind ``experiments/sweep.py``: load the
data, create one state per seed (stacked on a leading axis and sharded over
the local devices), compile the chunk of steps once, run every epoch on the
device, move λ on the host when the forecaster lives there, evaluate on the
test split and write ``config.json``, ``results.json`` and ``history.npz``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxwvae import data, lambda_rule, objectives, rundir, train
from jaxwvae.config import SweepConfig
from jaxwvae.errors import UserError
from jaxwvae.models import VAE
from jaxwvae.progress import Progress
from jaxwvae.state import create_replica

EVAL_BATCH = 1000
TRAIN_EVAL_SIZE = 10_000  # training images evaluated for the train/test reconstruction gap


def largest_divisor_at_most(n: int, cap: int) -> int:
    """The largest divisor of ``n`` that is ``<= cap`` (at least 1)."""
    return max(d for d in range(1, min(n, cap) + 1) if n % d == 0)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The shape of a run, derived from its config and data."""

    n_train: int
    steps_per_epoch: int
    total_steps: int
    chunk: int  # steps per compiled call
    replicas: int  # real seeds
    padded: int  # replicas after padding to a multiple of the device count


def make_plan(config: SweepConfig, n_train: int, n_devices: int) -> Plan:
    steps_per_epoch = n_train // config.batch_size
    host_rule = config.lambda_rule == "arima" and config.forecaster != "device"
    chunk = 1 if host_rule else largest_divisor_at_most(steps_per_epoch, config.steps_per_call)
    replicas = len(config.seeds)
    padded = -(-replicas // n_devices) * n_devices
    return Plan(n_train, steps_per_epoch, steps_per_epoch * config.epochs, chunk, replicas, padded)


def load_split(config: SweepConfig, split: str) -> np.ndarray:
    """uint8 images ``[n, 784]`` of the config's dataset (``train_size`` / ``test_size`` first images)."""
    images, _ = data.load(config.dataset, split, config.data_dir)
    size = config.train_size if split == "train" else config.test_size
    if size is not None:
        if size > len(images):
            flag = "--train-size" if split == "train" else "--test-size"
            raise UserError(f"{flag} {size}: the {split} split has only {len(images)} images; pass at most that")
        images = images[:size]
    return images.reshape(len(images), -1)


def device_rule(config: SweepConfig) -> lambda_rule.LambdaRule:
    """The rule fused into the compiled step (the fixed rule when λ moves on the host)."""
    if config.lambda_rule == "arima" and config.forecaster == "device":
        return lambda_rule.arima(config.arima_order, config.lambda_c)
    return lambda_rule.fixed()


class HostArima:
    """``forecaster='host'``: the device estimator run by NumPy over all replicas after each step."""

    def __init__(self, config: SweepConfig, replicas: int):
        self.rule = lambda_rule.arima(config.arima_order, config.lambda_c, xp=np, batch_shape=(replicas,))
        self.state = self.rule.init()

    def update(self, t_values, lam):
        lam_next, self.state, forecast = self.rule.update(t_values, self.state, lam)
        return lam_next, forecast

    def state_dict(self) -> dict:
        return self.state._asdict()

    def load_state_dict(self, state: dict, t_history: np.ndarray) -> None:
        del t_history
        self.state = lambda_rule.ArimaState(**{k: np.asarray(v) for k, v in state.items()})

    def close(self) -> None:
        pass


def host_rule(config: SweepConfig, replicas: int):
    """The host-side λ rule of the config, or None when λ moves on the device."""
    if config.lambda_rule != "arima" or config.forecaster == "device":
        return None
    if config.forecaster == "host":
        return HostArima(config, replicas)
    from jaxwvae.arima_reference import StatsmodelsRule

    return StatsmodelsRule(config, replicas)


def describe_devices() -> str:
    devices = jax.devices()
    kinds = sorted({d.device_kind for d in devices})
    text = f"{devices[0].platform}: {len(devices)} x {', '.join(kinds)}"
    if jax.process_count() > 1:
        text += f" over {jax.process_count()} processes"
    return text


def to_host(tree):
    """Fetch a (possibly multi-process) replica-sharded pytree as NumPy arrays."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree_util.tree_map(np.array, tree)


class Engine:
    """The compiled functions of one run and the stacked replica states they advance."""

    def __init__(self, config: SweepConfig, plan: Plan, in_dim: int):
        self.config, self.plan = config, plan
        devices = np.array(jax.devices())
        mesh = Mesh(devices, ("replica",))
        self.sharded = NamedSharding(mesh, PartitionSpec("replica"))
        self.replicated = NamedSharding(mesh, PartitionSpec())
        lam = config.lam_init
        model = VAE(config.hidden, config.latent_dim, in_dim, config.sigma_max_one)
        create = functools.partial(
            create_replica, model=model, tx=optax.adam(config.learning_rate),
            objective=objectives.get(config.objective).fn, lambda_rule=device_rule(config),
            lam_low=lam.low, lam_high=lam.high, in_dim=in_dim)
        # Padding replicas (to fill every device) take seeds no real replica uses; they never show in results.
        seeds = list(config.seeds) + [max(config.seeds) + 1 + i for i in range(plan.padded - plan.replicas)]
        self.seeds = np.asarray(seeds, np.int32)
        self._create = jax.jit(jax.vmap(create), out_shardings=self.sharded)
        self._order = jax.jit(jax.vmap(train.epoch_order, in_axes=(0, None, None)), static_argnums=2,
                              out_shardings=self.sharded)
        chunk = functools.partial(train.train_chunk, n_steps=plan.chunk, batch_size=config.batch_size)
        self._chunk = jax.jit(jax.vmap(chunk, in_axes=(0, None, 0, None)), donate_argnums=0,
                              out_shardings=self.sharded)
        self.compiled_chunk = None

    def init_states(self):
        return self._create(jax.device_put(self.seeds, self.sharded))

    def put_images(self, images_u8):
        return jax.device_put(images_u8, self.replicated)

    def compile(self, states, images) -> float:
        """Compile the chunk once (ahead of time); return the seconds it took."""
        start = time.perf_counter()
        orders = self._order(states, 0, self.plan.n_train)
        self.compiled_chunk = self._chunk.lower(states, images, orders, 0).compile()
        return time.perf_counter() - start

    def orders(self, states, epoch):
        return self._order(states, epoch, self.plan.n_train)

    def run_chunk(self, states, images, orders, first_batch):
        return self.compiled_chunk(states, images, orders, jnp.asarray(first_batch, jnp.int32))

    def set_lam(self, states, lam):
        return states.replace(lam=jax.device_put(np.asarray(lam, np.float32), self.sharded))

    def evaluate(self, states, images_u8) -> dict:
        """Per-replica metrics (per-image means) over ``images_u8`` (truncated to a whole number of batches)."""
        n = len(images_u8)
        batch = largest_divisor_at_most(n, EVAL_BATCH)
        if batch < EVAL_BATCH // 10:
            batch = min(n, EVAL_BATCH)
        n = n - n % batch
        fn = jax.jit(jax.vmap(functools.partial(train.evaluate, batch_size=batch), in_axes=(0, None)))
        return to_host(fn(states, self.put_images(images_u8[:n])))


def _empty_history(names, replicas: int, steps: int) -> dict:
    return {name: np.full((replicas, steps), np.nan, np.float32) for name in names}


def run(config: SweepConfig, out, *, resume: bool = False, overwrite: bool = False,
        progress: bool = True, command: list[str] | None = None) -> dict:
    """Train every seed of ``config`` as one program and write the run into ``out``.

    Returns the dict written to ``results.json``.
    """
    config = config.resolved()
    out = rundir.prepare(out, resume=resume, overwrite=overwrite)
    command = list(sys.argv) if command is None else command
    rundir.write_json(out / rundir.CONFIG, {"config": config.to_json(), "command": command})

    train_u8 = load_split(config, "train")
    test_u8 = load_split(config, "test")
    if len(train_u8) < config.batch_size:
        raise UserError(f"--batch-size {config.batch_size} is larger than the {len(train_u8)} training images; "
                        f"pass a smaller --batch-size")
    plan = make_plan(config, len(train_u8), jax.device_count())
    engine = Engine(config, plan, train_u8.shape[1])
    images = engine.put_images(train_u8)
    states = engine.init_states()
    compile_s = engine.compile(states, images)
    lam_init = to_host(states.lam_init)[: plan.replicas]

    host = host_rule(config, plan.padded)
    metric_names = None
    history = None
    bar = Progress(plan.total_steps, enabled=progress)
    start = time.perf_counter()
    try:
        step = 0
        for epoch in range(config.epochs):
            orders = engine.orders(states, epoch)
            for first_batch in range(0, plan.steps_per_epoch, plan.chunk):
                states, metrics = engine.run_chunk(states, images, orders, first_batch)
                metrics = to_host(metrics)
                if host is not None:
                    lam_next, forecast = host.update(metrics["t_gap"][:, 0], metrics["lam"][:, 0])
                    healthy = np.isfinite(metrics["t_gap"][:, 0])
                    states = engine.set_lam(states, np.where(healthy, lam_next, metrics["lam"][:, 0]))
                    metrics["t_forecast"][:, 0] = np.where(healthy, forecast, np.nan)
                if history is None:
                    metric_names = sorted(metrics)
                    history = _empty_history(metric_names, plan.replicas, plan.total_steps)
                for name in metric_names:
                    history[name][:, step:step + plan.chunk] = metrics[name][: plan.replicas]
                step += plan.chunk
                bar.update(step, loss=float(np.nanmedian(metrics["loss"][: plan.replicas, -1])))
        jax.block_until_ready(states)
    finally:
        bar.close()
        if host is not None:
            host.close()
    train_s = time.perf_counter() - start

    test_metrics = engine.evaluate(states, test_u8)
    train_metrics = engine.evaluate(states, train_u8[:TRAIN_EVAL_SIZE])
    final = to_host({"lam": states.lam, "diverged_step": states.diverged_step})
    runs = []
    for r, seed in enumerate(config.seeds):
        diverged_step = int(final["diverged_step"][r])
        run_ = {"seed": int(seed)}
        run_.update({k: float(v[r]) for k, v in sorted(test_metrics.items())})
        run_.update({
            "train_rec": float(train_metrics["rec"][r]),
            "lam_init": float(lam_init[r]),
            "lam_final": float(final["lam"][r]),
            "diverged": diverged_step >= 0,
            "diverged_step": diverged_step if diverged_step >= 0 else None,
        })
        runs.append(run_)
    results = {
        "config": config.to_json(),
        "device": describe_devices(),
        "timing": {"compile_s": compile_s, "train_s": train_s, "steps": plan.total_steps,
                   "replicas": plan.replicas, "steps_per_call": plan.chunk},
        "runs": runs,
    }
    rundir.write_npz(out / rundir.HISTORY, seeds=np.asarray(config.seeds, np.int64), **history)
    rundir.write_json(out / rundir.RESULTS, results)
    return results
