"""Every seed of a sweep in one compiled program: the job behind ``experiments/sweep.py``.

``run(config, out)`` loads the data and plans the run (:mod:`~jaxwvae.engine.plan`),
compiles its chunk of steps once (:mod:`~jaxwvae.engine.program`), creates one
state per seed, stacked on a leading axis and sharded over the devices, runs
every epoch on the device (:mod:`~jaxwvae.engine.loop`), moving λ on the host
when the forecaster lives there (:mod:`jaxwvae.forecast.host`), evaluates on the
test split (:mod:`~jaxwvae.engine.results`) and writes ``config.json``,
``results.json`` and ``history.npz`` (:mod:`~jaxwvae.engine.history`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import sys
import time
import warnings

import jax
import numpy as np

from jaxwvae.config import SweepConfig, grid
from jaxwvae.devices import distributed, memory
from jaxwvae.engine import results
from jaxwvae.engine.history import History, replica_columns
from jaxwvae.engine.loop import Training, train_loop
from jaxwvae.engine.plan import load_split, make_plan
from jaxwvae.engine.population import FitnessFn, Population, round_names
from jaxwvae.engine.program import Program
from jaxwvae.errors import RunWarning, UserError
from jaxwvae.forecast.host import host_rule
from jaxwvae.runs import rundir, runlock
from jaxwvae.runs.checkpoint import Checkpoints
from jaxwvae.runs.progress import Progress
from jaxwvae.runs.tensorboard import TensorBoardRuns, run_name


def run(config: SweepConfig | None, out, *, resume: bool = False, overwrite: bool = False,
        progress: bool = True, command: list[str] | None = None, fitness_fn: FitnessFn | None = None,
        tensorboard: bool = False) -> dict:
    """Train every seed of ``config`` as one program and write the run into ``out``.

    With ``resume``, continue the run saved in ``out`` from its latest
    checkpoint (``config`` may be None: the saved one is used; if given it must
    equal the saved one). The final state is always checkpointed, so the
    trained models can be loaded later (:func:`jaxwvae.evaluation.generate.load_run`).

    Only one process at a time writes into ``out`` (:mod:`jaxwvae.runs.runlock`);
    under :func:`jaxwvae.runs.interrupt.handled` a SIGINT/SIGTERM stops the run at
    the next chunk with a checkpoint and raises ``errors.Interrupted``.

    With ``pbt_every``, the run is population-based training
    (:mod:`jaxwvae.engine.population`); ``pbt_fitness='fid'`` needs ``fitness_fn``
    (:func:`jaxwvae.evaluation.fid_fitness.validation_fid`; the command line builds it).

    With ``tensorboard``, every replica is a TensorBoard run under ``out/tensorboard/``
    (:mod:`jaxwvae.runs.tensorboard`), written as it trains.

    Returns the dict written to ``results.json`` with two more keys: ``points``, the run's facts per
    grid point (:func:`jaxwvae.engine.results.by_point`), and ``history``, history.npz's arrays (where
    this process can read them). What the user should know (posterior collapse, diverged replicas)
    comes as :class:`jaxwvae.errors.RunWarning` warnings (:func:`jaxwvae.engine.results.notes`).
    """
    with contextlib.ExitStack() as held:  # the lock on out, released however the run ends
        outcome = _run(config, out, held, resume=resume, overwrite=overwrite, progress=progress, command=command,
                       fitness_fn=fitness_fn, tensorboard=tensorboard)
    for note in results.notes(SweepConfig.from_json(outcome["config"]), outcome):
        warnings.warn(note, RunWarning, stacklevel=2)
    history_path = pathlib.Path(out) / rundir.HISTORY
    if history_path.exists():
        with np.load(history_path) as h:
            history = {k: h[k] for k in h.files}
    else:
        history = None
    return {**outcome, "points": results.by_point(outcome), "history": history}


def _run(config: SweepConfig | None, out, held: contextlib.ExitStack, *, resume: bool, overwrite: bool,
         progress: bool, command: list[str] | None, fitness_fn: FitnessFn | None, tensorboard: bool) -> dict:
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
    validation_u8 = load_split(config, "validation") if config.validation_size else None
    out = pathlib.Path(out)
    if distributed.is_primary():
        held.enter_context(runlock.RunLock(out, command))  # before anything in out is written or deleted
        rundir.prepare(out, resume=resume, overwrite=overwrite)
        if not resume:
            command = list(sys.argv) if command is None else command
            rundir.write_json(out / rundir.CONFIG, {"config": config.to_json(), "command": command})
    distributed.barrier("jaxwvae-out-ready")
    plan = make_plan(config, len(train_u8), jax.device_count())
    program = Program.compile(config, plan, train_u8.shape[1])  # on abstract arguments: nothing allocated yet
    population = Population.build(config, program, validation_u8, fitness_fn) if plan.pbt_every else None
    orders_bytes = plan.padded // jax.device_count() * plan.n_train * 4  # int32 per replica, sharded
    need = memory.with_pbt(program.bytes_per_device, population.bytes_per_device if population else None,
                           resident=train_u8.nbytes + orders_bytes)
    memory.check_fits(need, replicas=plan.padded, shared=train_u8.nbytes)
    images = program.put_images(train_u8)
    states = program.init_states()
    history = History(program.metric_names, plan.padded, plan.total_steps,
                      round_names(population.fields) if population else (), len(plan.pbt_steps))
    host = host_rule(config, plan.padded) if plan.host_lambda else None
    checkpoints = Checkpoints(out / rundir.CHECKPOINTS)
    step, train_s = 0, 0.0
    restored = checkpoints.restore_latest(states, history.arrays, host.state_dict() if host else {},
                                          move_aside=distributed.is_primary()) if resume else None
    if restored is not None:  # the newest readable checkpoint; unreadable newer ones are reported and moved
        step, states, history.arrays, host_state, train_s = restored
        if host is not None:
            host.load_state_dict(host_state, history.arrays["t_gap"][:, :step])

    board = tensorboard_runs(config, program, history, out, step) if tensorboard and distributed.is_primary() else None
    bar = Progress(plan.total_steps, enabled=progress)
    start = time.perf_counter() - train_s
    try:
        states = train_loop(Training(program=program, states=states, images=images, history=history, host=host,
                                     checkpoints=checkpoints, step=step, start=start, bar=bar,
                                     population=population, board=board))
    except BaseException:
        if board is not None:
            board.close()
        raise
    finally:
        bar.close()
        if host is not None:
            host.close()
        checkpoints.close()
    train_s = time.perf_counter() - start
    outcome = results.collect(program, states, train_u8, test_u8, {"compile_s": program.compile_s, "train_s": train_s})
    columns = {k: v[: plan.replicas] for k, v in history.arrays.items()}
    if population is not None:
        outcome["pbt"] = results.pbt_block(population, states, columns, plan)
        columns["pbt_donor"] = columns["pbt_donor"].astype(np.int64)
        columns["pbt_step"] = np.asarray(plan.pbt_steps, np.int64)
    if board is not None:
        board.finish(outcome["runs"], plan.total_steps)
    if distributed.is_primary():
        rundir.write_npz(out / rundir.HISTORY, **replica_columns(config, program.table, plan.replicas), **columns)
        rundir.write_json(out / rundir.RESULTS, outcome)
    distributed.barrier("jaxwvae-results-written")
    return outcome


def tensorboard_runs(config: SweepConfig, program: Program, history: History, out: pathlib.Path,
                     step: int) -> TensorBoardRuns:
    """One TensorBoard run per real replica, named by its grid point and seed, with its hyperparameters."""
    points = grid.resolved_points(config)
    given = [dict(p) for p in config.grid] or [{}]
    fixed = {k: v for k, v in config.to_json().items() if k not in ("grid", "seeds", "data_dir")}
    names, hparams = [], []
    for r in range(program.plan.replicas):
        seed, point = int(program.table["seed"][r]), int(program.table["point"][r])
        names.append(run_name(seed, given[point]))
        hparams.append({**fixed, **grid.hyper(points[point]), "seed": seed})
    metrics = tuple(m for m in ("loss", "rec", "w2", "kl", "mmd", "t_gap", "lam") if m in history.arrays)
    return TensorBoardRuns(out, names, hparams, metrics, start=step)


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
