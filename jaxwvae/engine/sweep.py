"""Every seed of a sweep in one compiled program: the job behind ``experiments/sweep.py``.

``run(config, out)`` loads the data (:mod:`~jaxwvae.engine.plan`), creates one
state per seed, stacked on a leading axis and sharded over the local devices,
and compiles the chunk of steps once (:mod:`~jaxwvae.engine.program`), runs
every epoch on the device (:mod:`~jaxwvae.engine.loop`), moving λ on the host
when the forecaster lives there (:mod:`~jaxwvae.engine.host_rules`), evaluates
on the test split and writes ``config.json``, ``results.json`` and
``history.npz`` (:mod:`~jaxwvae.engine.history`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import sys
import time

import jax

from jaxwvae.config import SweepConfig, grid
from jaxwvae.core import exclusion
from jaxwvae.engine import distributed, memory
from jaxwvae.engine.distributed import describe_devices, to_host
from jaxwvae.engine.history import History, replica_columns
from jaxwvae.engine.host_rules import host_rule
from jaxwvae.engine.loop import train_loop
from jaxwvae.engine.plan import Plan, load_split, make_plan
from jaxwvae.engine.program import Engine, replica_loop
from jaxwvae.errors import UserError
from jaxwvae.runs import rundir, runlock
from jaxwvae.runs.checkpoint import Checkpoints
from jaxwvae.runs.progress import Progress

# The job, and the pieces scripts and notebooks reach through ``sweep.`` (their homes are the modules above).
__all__ = ["Engine", "Plan", "compiled_bytes", "config_for_resume", "describe_devices", "load_split", "make_plan",
           "replica_loop", "run", "to_host"]

TRAIN_EVAL_SIZE = 10_000  # training images evaluated for the train/test reconstruction gap
compiled_bytes = memory.compiled_bytes


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
        states = train_loop(engine, states, images, history, host, checkpoints, step, start, bar)
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
