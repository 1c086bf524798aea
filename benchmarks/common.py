"""What every benchmark prints: the machine, medians, ratios; results appended to a JSON file."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import statistics
import time

import jax

from jaxwvae.data import pixels
from jaxwvae.runs import rundir


def machine() -> str:
    """The accelerator (or CPU model) and core count, as measured on."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        model = platform.processor() or "cpu"
        try:
            for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        return f"CPU {model}, {os.cpu_count()} cores (jax {jax.__version__})"
    return f"{jax.device_count()} x {device.device_kind} (jax {jax.__version__})"


def median_ms(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in ms (``fn`` must block until its work is done)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def write(path, record: dict) -> None:
    """Append ``record`` (with the machine and date) to the JSON list in ``path``."""
    if path is None:
        return
    path = pathlib.Path(path)
    records = json.loads(path.read_text()) if path.exists() else []
    records.append({"machine": machine(), "date": datetime.date.today().isoformat(), **record})
    rundir.write_json(path, records)  # strict JSON: a NaN or inf (a failed timing) is written as null


def sweep_block(program, images):
    """One compiled chunk (``program.plan.chunk`` steps of every replica), as a block for :func:`median_ms`.

    ``program`` is a compiled :class:`jaxwvae.engine.program.Program`; the states are created here and
    each call advances them by the same batches (the first ``chunk`` of epoch 0) and waits for the metrics.
    """
    states = program.init_states()
    orders = program.orders(states, 0)
    box = {"states": states}

    def block():
        box["states"], metrics = program.run(box["states"], images, orders, 0)
        jax.block_until_ready(metrics)

    return block


def seed_loop_block(program, images_u8, steps: int):
    """The Flax example's way: a Python loop over seeds, then steps, of one jitted single-seed step.

    The replicas start from ``program``'s initial states, unstacked onto the first device; each step's
    batch is gathered on the device by a second jitted call. Each call of the returned block runs
    ``steps`` steps of every seed (batches ``0 … steps - 1`` of epoch 0) and waits for them.
    """
    from jax import lax

    from jaxwvae.replica import train

    size, n_train = program.config.batch_size, program.plan.n_train
    device = jax.devices()[0]
    stacked = program.init_states()
    singles = [jax.device_put(jax.tree_util.tree_map(lambda x, k=k: x[k], stacked), device)
               for k in range(program.plan.replicas)]
    orders = [train.epoch_order(s, 0, n_train) for s in singles]
    step = jax.jit(train.train_step, donate_argnums=0)
    batch = jax.jit(lambda images, order, i: pixels.to_float(images[lax.dynamic_slice_in_dim(order, i * size, size)]))
    images = jax.device_put(images_u8, device)

    def block():
        metrics = None
        for k in range(len(singles)):
            for i in range(steps):
                singles[k], metrics = step(singles[k], batch(images, orders[k], i))
        jax.block_until_ready((singles, metrics))

    return block
