"""Every seed of a sweep in one compiled program: ``jit(vmap(train_chunk))`` over a replica axis.

``run(config, out)`` is the whole job behind ``experiments/sweep.py``: load the
data, create one state per seed (stacked on a leading axis and sharded over
the local devices), compile the chunk of steps once, run every epoch on the
device, move λ on the host when the forecaster lives there, evaluate on the
test split and write ``config.json``, ``results.json`` and ``history.npz``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import pathlib
import sys
import time

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxwvae import data
from jaxwvae.config import SweepConfig, grid
from jaxwvae.core import exclusion, lambda_rule, objectives
from jaxwvae.core.models import VAE
from jaxwvae.engine import distributed, memory
from jaxwvae.engine.distributed import to_host
from jaxwvae.errors import Interrupted, UserError
from jaxwvae.replica import train
from jaxwvae.replica.state import create_replica, optimizer
from jaxwvae.runs import interrupt, rundir, runlock
from jaxwvae.runs.checkpoint import Checkpoints
from jaxwvae.runs.progress import Progress

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
    replicas: int  # real replicas: grid points x seeds
    padded: int  # replicas after padding to a multiple of the device count
    remainder: int = 0  # steps of the epoch's last, shorter call (0: the chunk divides the epoch)

    def calls(self, first_batch: int):
        """``(first batch, steps)`` of the calls from ``first_batch`` to the end of an epoch."""
        return [(b, min(self.chunk, self.steps_per_epoch - b))
                for b in range(first_batch, self.steps_per_epoch, self.chunk)]


def adaptive(config: SweepConfig) -> bool:
    """Whether any grid point moves λ with the adaptive rule."""
    return any(c.lambda_rule == "arima" for c in grid.resolved_points(config))


def make_plan(config: SweepConfig, n_train: int, n_devices: int) -> Plan:
    steps_per_epoch = n_train // config.batch_size
    host_rule = adaptive(config) and config.forecaster != "device"
    cap = 1 if host_rule else min(config.steps_per_call, steps_per_epoch)  # λ from the host: step by step
    chunk = largest_divisor_at_most(steps_per_epoch, cap)
    remainder = 0
    if 2 * chunk <= cap:  # no divisor near the cap (e.g. 599 steps): full chunks and one shorter call
        chunk, remainder = cap, steps_per_epoch % cap
    replicas = grid.replica_count(config)
    padded = -(-replicas // n_devices) * n_devices
    return Plan(n_train, steps_per_epoch, steps_per_epoch * config.epochs, chunk, replicas, padded, remainder)


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
    if adaptive(config) and config.forecaster == "device":
        return lambda_rule.arima(config.arima_order)
    return lambda_rule.fixed()


def host_hyper(config: SweepConfig, replicas: int) -> lambda_rule.RuleHyper:
    """The λ rule's per-replica hyperparameters as NumPy arrays, for the host forecasters."""
    table = grid.replica_table(config, replicas)
    return lambda_rule.RuleHyper(*(table[f] for f in lambda_rule.RuleHyper._fields))


class HostArima:
    """``forecaster='host'``: the device estimator run by NumPy over all replicas after each step."""

    def __init__(self, config: SweepConfig, replicas: int):
        self.rule = lambda_rule.arima(config.arima_order, xp=np, batch_shape=(replicas,))
        self.hyper = host_hyper(config, replicas)
        self.state = self.rule.init()

    def update(self, t_values, lam):
        lam_next, self.state, forecast = self.rule.update(t_values, self.state, lam, self.hyper)
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
    if not adaptive(config) or config.forecaster == "device":
        return None
    if config.forecaster == "host":
        return HostArima(config, replicas)
    from jaxwvae.engine.statsmodels_rule import StatsmodelsRule

    return StatsmodelsRule(config, replicas)


def describe_devices() -> str:
    devices = jax.devices()
    kinds = sorted({d.device_kind for d in devices})
    text = f"{devices[0].platform}: {len(devices)} x {', '.join(kinds)}"
    if jax.process_count() > 1:
        text += f" over {jax.process_count()} processes"
    return text


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
        # σ <= 1 is a per-replica cap (state.logvar_max), so the model itself is uncapped.
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


def config_for_resume(out, requested: SweepConfig | None) -> SweepConfig:
    """The config saved in ``out``; a requested config that differs from it is a UserError."""
    path = pathlib.Path(out) / rundir.CONFIG
    if not path.exists():
        raise UserError(f"--resume: {out} holds no {rundir.CONFIG} of an earlier run; "
                        f"drop --resume to start a new run there")
    saved = rundir.read_json(path)
    try:
        saved = SweepConfig.from_json(saved["config"])
    except (UserError, KeyError, TypeError) as e:
        raise UserError(f"--resume: {path} was written by another version of jaxwvae ({e}); resume with that "
                        f"version, or start a new --out") from None
    if requested is not None:
        requested = requested.resolved()
        differ = [f.name for f in dataclasses.fields(SweepConfig) if getattr(requested, f.name) != getattr(saved, f.name)]
        if differ:
            shown = ", ".join(f"{name}: saved {getattr(saved, name)!r}, asked {getattr(requested, name)!r}"
                              for name in differ)
            raise UserError(f"--resume: the run in {out} has another config ({shown}); "
                            f"resume without those flags, or start a new --out")
    return saved


class History:
    """Per-step metrics of every replica (padding included), filled chunk by chunk on the host."""

    def __init__(self, names, replicas: int, steps: int):
        self.arrays = {name: np.full((replicas, steps), np.nan, np.float32) for name in names}

    def record(self, step: int, metrics: dict) -> None:
        for name, values in metrics.items():
            self.arrays[name][:, step:step + values.shape[1]] = values

    def last_median(self, name: str, step: int, replicas: int) -> float | None:
        """Median of ``name`` over the real replicas at step ``step`` (1-based; NaN if all diverged), None at 0."""
        return float(np.nanmedian(self.arrays[name][:replicas, step - 1])) if step else None


def run(config: SweepConfig | None, out, *, resume: bool = False, overwrite: bool = False,
        progress: bool = True, command: list[str] | None = None) -> dict:
    """Train every seed of ``config`` as one program and write the run into ``out``.

    With ``resume``, continue the run saved in ``out`` from its latest
    checkpoint (``config`` may be None: the saved one is used; if given it must
    equal the saved one). The final state is always checkpointed, so the
    trained models can be loaded later (:func:`load_states`).

    Only one process at a time writes into ``out`` (:mod:`jaxwvae.runs.runlock`);
    under :func:`jaxwvae.runs.interrupt.handled` a SIGINT/SIGTERM stops the run at
    the next chunk with a checkpoint and raises ``errors.Interrupted``.

    Returns the dict written to ``results.json``.
    """
    with contextlib.ExitStack() as held:  # the lock on out, released however the run ends
        return _run(config, out, held, resume=resume, overwrite=overwrite, progress=progress, command=command)


def _run(config: SweepConfig | None, out, held: contextlib.ExitStack, *, resume: bool, overwrite: bool,
         progress: bool, command: list[str] | None) -> dict:
    if distributed.is_primary():
        runlock.check_free(out)  # a live run holds out: name it before any other complaint
    if resume:
        config = config_for_resume(out, config)
    config = config.resolved()
    rundir.check(out, resume=resume, overwrite=overwrite)
    if resume and (pathlib.Path(out) / rundir.RESULTS).exists():
        return rundir.read_results(pathlib.Path(out) / rundir.RESULTS)  # the run had finished
    train_u8 = load_split(config, "train")  # bad data fails here, before anything is written
    test_u8 = load_split(config, "test")
    out = pathlib.Path(out)
    if distributed.is_primary():
        held.enter_context(runlock.RunLock(out, command))  # before anything in out is written or deleted
        rundir.prepare(out, resume=resume, overwrite=overwrite)
        if not resume:
            command = list(sys.argv) if command is None else command
            rundir.write_json(out / rundir.CONFIG, {"config": config.to_json(), "command": command})
    distributed.barrier("jaxwvae-out-ready")
    plan = make_plan(config, len(train_u8), jax.device_count())
    engine = Engine(config, plan, train_u8.shape[1])
    compile_s = engine.compile(*train_u8.shape)  # on abstract arguments: nothing allocated yet
    need = engine.bytes_per_device()
    memory.check_fits(need, replicas=plan.padded, shared=train_u8.nbytes)
    images = engine.put_images(train_u8)
    states = engine.init_states()
    history = History(engine.metric_names(), plan.padded, plan.total_steps)
    host = host_rule(config, plan.padded)
    checkpoints = Checkpoints(out / rundir.CHECKPOINTS)
    step, train_s = 0, 0.0
    restored = checkpoints.restore_latest(states, history.arrays, host.state_dict() if host else {},
                                          move_aside=distributed.is_primary()) if resume else None
    if restored is not None:  # the newest readable checkpoint; unreadable newer ones are reported and moved
        step, states, history.arrays, host_state, train_s = restored
        if host is not None:
            host.load_state_dict(host_state, history.arrays["t_gap"][:, :step])

    bar = Progress(plan.total_steps, enabled=progress)
    start = time.perf_counter() - train_s
    try:
        states = _train(engine, states, images, history, host, checkpoints, step, start, bar)
    finally:
        bar.close()
        if host is not None:
            host.close()
        checkpoints.close()
    train_s = time.perf_counter() - start
    results = _results(config, plan, engine, states, train_u8, test_u8,
                       {"compile_s": compile_s, "train_s": train_s})
    results["memory"] = {"compiled_bytes_per_device": need,
                         "peak_bytes_in_use": (jax.local_devices()[0].memory_stats() or {}).get("peak_bytes_in_use")}
    if distributed.is_primary():
        rundir.write_npz(out / rundir.HISTORY, **replica_columns(config, engine.table, plan.replicas),
                         **{k: v[: plan.replicas] for k, v in history.arrays.items()})
        rundir.write_json(out / rundir.RESULTS, results)
    distributed.barrier("jaxwvae-results-written")
    return results


compiled_bytes = memory.compiled_bytes  # kept for benchmarks and notebooks that read it from here


def _train(engine: Engine, states, images, history: History, host, checkpoints: Checkpoints,
           step: int, start: float, bar: Progress):
    """Run the chunks from ``step`` to the end; checkpoint every ``checkpoint_every`` steps and at the end.

    After a SIGINT/SIGTERM (:func:`jaxwvae.runs.interrupt.requested`) the chunk in
    flight ends, a checkpoint is saved and ``Interrupted`` is raised.
    With λ on the device the next chunk is dispatched before the last one's
    metrics are fetched, so the accelerator never waits for the host.
    """
    config, plan = engine.config, engine.plan
    every = config.checkpoint_every
    pending = None  # (step, metrics on the device) not yet recorded
    last_saved = step
    for epoch in range(step // plan.steps_per_epoch, config.epochs):
        orders = engine.orders(states, epoch)
        for first_batch, steps in plan.calls(step % plan.steps_per_epoch):
            states, metrics = engine.run_chunk(states, images, orders, first_batch, steps)
            if host is not None:
                metrics = to_host(metrics)
                t_now, lam_now = metrics["t_gap"][:, 0], metrics["lam"][:, 0]
                lam_next, forecast = host.update(t_now, lam_now)
                healthy = np.isfinite(t_now)
                states = engine.set_lam(states, np.where(healthy, lam_next, lam_now))
                metrics["t_forecast"][:, 0] = np.where(healthy, forecast, np.nan)
                history.record(step, metrics)
            else:
                if pending is not None:
                    history.record(pending[0], to_host(pending[1]))
                pending = (step, metrics)
            step += steps
            stop = interrupt.agreed(interrupt.requested()) if step < plan.total_steps else None
            if stop or step == plan.total_steps or (every and step // every > last_saved // every):
                if pending is not None:
                    history.record(pending[0], to_host(pending[1]))
                    pending = None
                checkpoints.save(step, states, {k: v.copy() for k, v in history.arrays.items()},
                                 host.state_dict() if host else {}, time.perf_counter() - start)
                last_saved = step
            recorded = step if pending is None else pending[0]
            bar.update(step, loss=history.last_median("loss", recorded, plan.replicas))
            if stop:
                checkpoints.wait()
                raise Interrupted(f"interrupted by {interrupt.name(stop)} at step {step} of {plan.total_steps}; "
                                  f"checkpoint saved; resume with: python experiments/sweep.py --resume "
                                  f"--out {checkpoints.directory.parent}", 128 + stop)
    jax.block_until_ready(states)
    checkpoints.wait()
    return states


def replica_columns(config: SweepConfig, table: dict, replicas: int) -> dict:
    """``history.npz``'s per-replica columns: ``seeds``, ``point`` and ``hyper_<field>`` for each grid field."""
    points = grid.resolved_points(config)
    point = table["point"][:replicas]
    columns = {"seeds": table["seed"][:replicas].astype(np.int64), "point": point.astype(np.int64)}
    for name in grid.FIELDS:
        values = [grid.hyper(points[i])[name] for i in point]
        if name in ("lam", "lambda_rule"):
            columns[f"hyper_{name}"] = np.asarray(values, str)
        else:  # lambda_max None (unbounded) is stored as +inf
            columns[f"hyper_{name}"] = np.asarray([np.inf if v is None else v for v in values], np.float64)
    return columns


def _results(config: SweepConfig, plan: Plan, engine: Engine, states, train_u8, test_u8, timing: dict) -> dict:
    """The results.json dict: final per-image test metrics of every real replica, point-major, then seed order."""
    test_metrics = engine.evaluate(states, test_u8)
    train_metrics = engine.evaluate(states, train_u8[:TRAIN_EVAL_SIZE])
    final = to_host({"lam": states.lam, "lam_init": states.lam_init, "diverged_step": states.diverged_step})
    points = grid.resolved_points(config)
    runs = []
    for r in range(plan.replicas):
        diverged_step = int(final["diverged_step"][r])
        point = int(engine.table["point"][r])
        run_ = {"seed": int(engine.table["seed"][r])}
        if config.grid:
            run_.update(point=point, hyper=grid.hyper(points[point]))
        run_.update({k: float(v[r]) for k, v in sorted(test_metrics.items())})
        run_.update({
            "train_rec": float(train_metrics["rec"][r]),
            "lam_init": float(final["lam_init"][r]),
            "lam_final": float(final["lam"][r]),
            "diverged": diverged_step >= 0,
            "diverged_step": diverged_step if diverged_step >= 0 else None,
        })
        run_["excluded"], run_["reason"] = exclusion.classify(run_)
        runs.append(run_)
    return {
        "config": config.to_json(),
        "device": describe_devices(),
        "timing": {**timing, "steps": plan.total_steps, "replicas": plan.replicas, "steps_per_call": plan.chunk},
        "grid": [grid.hyper(p) for p in points] if config.grid else [],
        "runs": runs,
    }
