"""How a sweep's cost grows with its seed count: time per sweep step, memory, the largest sweep that fits.

For each seed count the library's compiled chunk (``sweep.Engine``, ``--steps`` steps of every
seed per call, the paper's MNIST model and batch, the default adaptive λ on the device) is
compiled once and timed over ``--repeats`` blocks. Printed per seed count: median ms per sweep
step, µs per seed-step (falls while the device still has idle capacity), the 15-epoch MNIST
training time at that rate, the library's memory estimate (``jaxwvae.memory``), the compiled
chunk's own figure (XLA's memory analysis: arguments + temporaries) and, on GPU, the peak bytes
in use. On a device that reports its memory, the largest seed count the estimate admits.

    python benchmarks/scaling.py --seeds-list 1,10,30,100,300,1000 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import time

import jax

import common
from jaxwvae import config as config_lib
from jaxwvae import memory, sweep

PAPER_STEPS = 15 * 600


def measure(seeds: int, args, images_np) -> dict:
    config = config_lib.paper_mnist(seeds=tuple(range(seeds)), data_dir=args.data_dir,
                                    steps_per_call=args.steps).resolved()
    plan = sweep.make_plan(config, len(images_np), jax.device_count())
    engine = sweep.Engine(config, plan, images_np.shape[1])
    images = engine.put_images(images_np)
    start = time.perf_counter()
    block = common.sweep_block(engine, images)
    compile_s = time.perf_counter() - start
    block()
    ms = common.median_ms(block, args.repeats) / plan.chunk
    analysis = engine.compiled_chunk.memory_analysis()
    stats = jax.local_devices()[0].memory_stats() or {}
    return {"seeds": seeds, "ms_per_step": ms, "us_per_seed_step": 1e3 * ms / seeds,
            "paper_run_s": ms * PAPER_STEPS / 1e3, "compile_s": compile_s,
            "estimate_bytes": memory.estimate(config, plan.n_train, images_np.shape[1], plan.padded // jax.device_count()),
            "compiled_bytes": sweep.compiled_bytes(analysis), "peak_bytes_in_use": stats.get("peak_bytes_in_use")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds-list", default="1,10,30,100,300,1000")
    parser.add_argument("--steps", type=int, default=50, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="append the result to this JSON file")
    args = parser.parse_args()

    base = config_lib.paper_mnist(data_dir=args.data_dir).resolved()
    images_np = sweep.load_split(base, "train")
    rows = []
    for seeds in (int(s) for s in args.seeds_list.split(",")):
        rows.append(measure(seeds, args, images_np))
        r = rows[-1]
        mib = lambda b: "–" if b is None else f"{b / 2**20:.0f}"  # noqa: E731
        print(f"{seeds:6d} seeds  {r['ms_per_step']:9.2f} ms/step  {r['us_per_seed_step']:8.1f} µs/seed-step  "
              f"15 epochs {r['paper_run_s']:8.0f} s  estimate {mib(r['estimate_bytes'])} MiB  "
              f"compiled {mib(r['compiled_bytes'])} MiB  peak {mib(r['peak_bytes_in_use'])} MiB", flush=True)
    limit = memory.device_limit()
    largest = None if limit is None else memory.max_replicas(base, len(images_np), images_np.shape[1], limit,
                                                              jax.device_count())
    print(f"machine: {common.machine()}")
    print("largest seed count that fits (estimate): " + ("no device memory limit reported (CPU)" if largest is None
                                                         else str(largest)))
    common.write(args.json, {"benchmark": "scaling", "steps": args.steps, "repeats": args.repeats, "rows": rows,
                             "largest_fitting_seeds": largest})


if __name__ == "__main__":
    main()
