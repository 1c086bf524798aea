"""The training loop: compiled chunks from a step to the end, λ from the host rule, checkpoints, signals."""

from __future__ import annotations

import time

import jax
import numpy as np

from jaxwvae.engine.distributed import to_host
from jaxwvae.engine.history import History
from jaxwvae.engine.host_rules import HostRule
from jaxwvae.engine.program import Engine
from jaxwvae.errors import Interrupted
from jaxwvae.runs import interrupt
from jaxwvae.runs.checkpoint import Checkpoints
from jaxwvae.runs.progress import Progress


def train_loop(engine: Engine, states, images, history: History, host: HostRule | None,
               checkpoints: Checkpoints, step: int, start: float, bar: Progress):
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
