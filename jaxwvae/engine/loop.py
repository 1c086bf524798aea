"""The training loop: compiled calls from a step to the end, λ from the host rule, checkpoints, signals."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import numpy as np

from jaxwvae.core import objectives
from jaxwvae.devices.distributed import to_host
from jaxwvae.engine.history import History
from jaxwvae.engine.population import Population
from jaxwvae.engine.program import Program
from jaxwvae.errors import Interrupted
from jaxwvae.forecast.host import HostRule
from jaxwvae.runs import interrupt
from jaxwvae.runs.checkpoint import Checkpoints
from jaxwvae.runs.progress import Progress
from jaxwvae.runs.tensorboard import TensorBoardRuns


@dataclasses.dataclass(frozen=True)
class Training:
    """One run as the training loop takes it: what it advances, from which step, and where it writes."""

    program: Program
    states: Any  # the stacked replica states at ``step``
    images: jax.Array  # the training images on the devices (Program.put_images)
    history: History  # filled from ``step`` on
    host: HostRule | None  # the rule moving λ after each step when program.plan.host_lambda, else None
    checkpoints: Checkpoints
    step: int  # the first step to run: 0, or the restored checkpoint's
    start: float  # time.perf_counter() at step 0 (a resumed run subtracts its earlier training time)
    bar: Progress
    population: Population | None = None  # population-based training's rounds (plan.pbt_steps), or none
    board: TensorBoardRuns | None = None  # a TensorBoard run per replica, fed the recorded steps, or none


def _check_host(training: Training) -> None:
    """λ on the host (``Plan.host_lambda``) needs a host rule and one step per call; on the device, no rule."""
    plan = training.program.plan
    if plan.host_lambda != (training.host is not None):
        raise ValueError(f"the plan moves λ on the {'host' if plan.host_lambda else 'device'} but the run "
                         f"{'has no' if training.host is None else 'has a'} host rule")
    if plan.host_lambda and (plan.chunk, plan.remainder) != (1, 0):
        raise ValueError(f"λ on the host moves after every step: the plan must run one step per call, "
                         f"not {plan.chunk}")


def train_loop(training: Training):
    """Run the calls from ``training.step`` to the end; checkpoint every ``checkpoint_every`` steps and at the end.

    Returns the final states. With ``plan.host_lambda`` each call is one step,
    after which the host rule reads ``T_t`` and ``λ_t`` and sets ``λ_{t+1}``.
    With a population, a PBT round runs after each step of ``plan.pbt_steps``,
    before that step's checkpoint, so a resumed run never repeats or skips one.
    After a SIGINT/SIGTERM (:func:`jaxwvae.runs.interrupt.requested`) the call
    in flight ends, a checkpoint is saved and ``Interrupted`` is raised. With λ
    on the device the next call is dispatched before the last one's metrics
    are fetched, so the accelerator never waits for the host.
    """
    _check_host(training)
    program, history, host, checkpoints = training.program, training.history, training.host, training.checkpoints
    config, plan = program.config, program.plan
    states, step = training.states, training.step
    every = config.checkpoint_every
    pending = None  # (step, metrics on the device) not yet recorded
    term = objectives.get(config.objective).term  # the progress line: medians of these over the replicas
    shown = (("loss", "loss"), ("rec", "rec"), ({"w2": "W2²", "kl": "KL", "mmd": "MMD"}[term], term), ("λ", "lam"))
    last_saved = step
    for epoch in range(step // plan.steps_per_epoch, config.epochs):
        orders = program.orders(states, epoch)
        for first_batch, steps in plan.calls(step % plan.steps_per_epoch):
            states, metrics = program.run(states, training.images, orders, first_batch, steps)
            if plan.host_lambda:  # one step: column 0 is step ``step``
                metrics = to_host(metrics)
                t_now, lam_now = metrics["t_gap"][:, 0], metrics["lam"][:, 0]
                lam_next, forecast = host.update(t_now, lam_now)
                healthy = np.isfinite(t_now)
                states = program.set_lam(states, np.where(healthy, lam_next, lam_now))
                metrics["t_forecast"][:, 0] = np.where(healthy, forecast, np.nan)
                history.record(step, metrics)
            else:
                if pending is not None:
                    history.record(pending[0], to_host(pending[1]))
                pending = (step, metrics)
            step += steps
            if training.population is not None and step in plan.pbt_steps:  # before this step's checkpoint
                k = plan.pbt_steps.index(step)
                states, record = training.population.round(states, k)
                history.record_round(k, record)
            stop = interrupt.agreed(interrupt.requested()) if step < plan.total_steps else None
            if stop or step == plan.total_steps or (every and step // every > last_saved // every):
                if pending is not None:
                    history.record(pending[0], to_host(pending[1]))
                    pending = None
                checkpoints.save(step, states, {k: v.copy() for k, v in history.arrays.items()},
                                 host.state_dict() if host else {}, time.perf_counter() - training.start)
                last_saved = step
            recorded = step if pending is None else pending[0]
            if training.board is not None:
                training.board.write(history.arrays, recorded)
            training.bar.update(step, **{name: history.last_median(key, recorded, plan.replicas)
                                         for name, key in shown})
            if stop:
                checkpoints.wait()
                raise Interrupted(f"interrupted by {interrupt.name(stop)} at step {step} of {plan.total_steps}; "
                                  f"checkpoint saved; resume with: python experiments/sweep.py --resume "
                                  f"--out {checkpoints.directory.parent}", 128 + stop)
    jax.block_until_ready(states)
    checkpoints.wait()
    return states
