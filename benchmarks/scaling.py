"""How a sweep's cost grows with its seed count: time per sweep step, memory, the largest sweep that fits.

For each seed count the library's compiled chunk (``Program.compile``, ``--steps`` steps of every
seed per call, the paper's MNIST model and batch, the default adaptive λ on the device) is
compiled once and timed over ``--repeats`` blocks. Printed per seed count: median ms per sweep
step, µs per seed-step (falls while the device still has idle capacity), the 15-epoch MNIST
training time at that rate, the compiled
chunk's own figure (XLA's memory analysis: arguments + temporaries), on GPU the peak bytes in
use, and the work itself from XLA's cost analysis (FLOPs and bytes accessed per sweep step) as
achieved GFLOP/s and GB/s, beside what a large matmul attains on the same device: how close the
step is to the machine's limit. On a device that reports its memory, the largest seed count the
memory analysis admits (linear in the seeds from the last row).

    python benchmarks/scaling.py --seeds-list 1,10,30,100,300,1000 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import time

import common
import jax
import jax.numpy as jnp

from jaxwvae import config as config_lib
from jaxwvae.devices import memory
from jaxwvae.engine.plan import load_split, make_plan
from jaxwvae.engine.program import Program
from jaxwvae.replica import train

PAPER_STEPS = 15 * 600


def step_cost(program, config) -> tuple[float, float]:
    """FLOPs and bytes accessed of one sweep step, from XLA's cost analysis of the vmapped step alone.

    (The chunk's analysis counts its scan body once, whatever the trip count, so it is not used.)
    """
    states = jax.eval_shape(program.init_states)
    batch = jax.ShapeDtypeStruct((program.plan.padded, config.batch_size, 784), jnp.float32)
    cost = jax.jit(jax.vmap(train.train_step)).lower(states, batch).compile().cost_analysis() or {}
    cost = cost[0] if isinstance(cost, list) else cost
    return cost.get("flops", float("nan")), cost.get("bytes accessed", float("nan"))


class DoesNotFit(Exception):
    """A seed count whose compiled chunk is larger than the device's memory."""


def measure(seeds: int, images_np, *, steps: int, repeats: int, **overrides) -> dict:
    """One seed count: the chunk compiled once, then the median of ``repeats`` blocks of ``steps`` steps.

    ``overrides`` are further ``paper_mnist`` fields (``data_dir``, ``train_size``, ``replica_loop``).
    Raises :class:`DoesNotFit` when XLA's own figure for the compiled chunk exceeds the device's
    memory limit (before the chunk runs); an allocation that fails raises XLA's error.
    """
    config = config_lib.paper_mnist(seeds=tuple(range(seeds)), steps_per_call=steps, **overrides).resolved()
    plan = make_plan(config, len(images_np), jax.device_count())
    program = Program.compile(config, plan, images_np.shape[1])  # on abstract arguments: nothing allocated yet
    compile_s = program.compile_s
    compiled = program.bytes_per_device
    limit = memory.device_limit()
    if compiled is not None and limit is not None and compiled > limit:
        raise DoesNotFit(f"{seeds} seeds: the compiled chunk needs {compiled / 2**30:.1f} GiB (XLA memory "
                         f"analysis), the device has {limit / 2**30:.1f} GiB")
    block = common.sweep_block(program, program.put_images(images_np))
    start = time.perf_counter()
    block()
    ms = common.median_ms(block, repeats) / plan.chunk
    run_s = time.perf_counter() - start
    stats = jax.local_devices()[0].memory_stats() or {}
    flops, traffic = step_cost(program, config)
    return {"seeds": seeds, "replica_loop": program.loop, "steps": plan.chunk, "repeats": repeats,
            "hidden": list(config.hidden), "latent_dim": config.latent_dim,
            "ms_per_step": ms, "us_per_seed_step": 1e3 * ms / seeds,
            "gflop_per_step": flops / 1e9, "gflops": flops / ms / 1e6, "gb_per_s": traffic / ms / 1e6,
            "paper_run_s": ms * PAPER_STEPS / 1e3, "compile_s": compile_s, "run_s": run_s,
            "compiled_bytes": compiled, "peak_bytes_in_use": stats.get("peak_bytes_in_use"),
            "images_bytes": images_np.nbytes, "replicas_per_device": plan.padded // jax.device_count()}


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """What this device attains on a large float32 matmul: the reference for the step's GFLOP/s."""
    a = jax.random.normal(jax.random.key(0), (n, n))
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    return 2 * n**3 / common.median_ms(lambda: f(a).block_until_ready(), repeats) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds-list", default="1,10,30,100,300,1000")
    parser.add_argument("--steps", type=int, default=50, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="append the result to this JSON file")
    args = parser.parse_args()

    base = config_lib.paper_mnist(data_dir=args.data_dir).resolved()
    images_np = load_split(base, "train")
    rows = []
    for seeds in (int(s) for s in args.seeds_list.split(",")):
        rows.append(measure(seeds, images_np, steps=args.steps, repeats=args.repeats, data_dir=args.data_dir))
        r = rows[-1]
        mib = lambda b: "–" if b is None else f"{b / 2**20:.0f}"  # noqa: E731
        print(f"{seeds:6d} seeds  {r['ms_per_step']:9.2f} ms/step  {r['us_per_seed_step']:8.1f} µs/seed-step  "
              f"15 epochs {r['paper_run_s']:8.0f} s  "
              f"compiled {mib(r['compiled_bytes'])} MiB  peak {mib(r['peak_bytes_in_use'])} MiB  "
              f"{r['gflop_per_step']:.2f} GFLOP/step -> {r['gflops']:.0f} GFLOP/s, {r['gb_per_s']:.1f} GB/s "
              f"(XLA cost analysis)", flush=True)
    limit, last = memory.device_limit(), rows[-1]
    largest = None if limit is None else memory.max_replicas(
        last["compiled_bytes"], last["images_bytes"], last["replicas_per_device"], limit, jax.device_count())
    attainable = matmul_gflops()
    print(f"machine: {common.machine()}; a 2048 x 2048 float32 matmul attains {attainable:.0f} GFLOP/s here")
    print("largest seed count that fits (XLA's memory analysis, linear in the seeds): " + ("no device memory limit reported (CPU)" if largest is None
                                                         else str(largest)))
    common.write(args.json, {"benchmark": "scaling", "steps": args.steps, "repeats": args.repeats, "rows": rows,
                             "largest_fitting_seeds": largest, "matmul_gflops": attainable})


if __name__ == "__main__":
    main()
