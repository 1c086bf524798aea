"""The same work two ways: all seeds as one compiled program, and a Python loop over seeds.

(a) this library: ``jit(vmap(train_chunk))``, ``--steps`` steps of every seed per call;
(b) the Flax VAE example's way, once per seed: a Python loop over seeds and steps calling one
    jitted single-seed ``train_step`` (the batch gathered on the device by a second jitted call).

Both use the paper's model (784-512-256-20), batch 100, ELBO_W with a fixed λ, the same data
and the same per-seed state. Prints the machine, the median ms per sweep step (one step of every
seed) over ``--repeats`` timed blocks of ``--steps`` steps, the ratio, and the time a 15-epoch
MNIST sweep would take at that rate.

    python benchmarks/sweep_speed.py --seeds 30 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import functools

import jax
from jax import lax

import common
from jaxwvae import config as config_lib
from jaxwvae import sweep, train

PAPER_STEPS = 15 * 600  # 15 epochs of 600 batches of 100 MNIST images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=100, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="append the result to this JSON file")
    args = parser.parse_args()

    config = config_lib.paper_mnist(seeds=tuple(range(args.seeds)), lambda_rule="fixed", data_dir=args.data_dir,
                                    steps_per_call=args.steps).resolved()
    images_np = sweep.load_split(config, "train")
    plan = sweep.make_plan(config, len(images_np), jax.device_count())
    engine = sweep.Engine(config, plan, images_np.shape[1])
    images = engine.put_images(images_np)

    # (a) the sweep
    states = engine.init_states()
    engine.compile(states, images)
    orders = engine.orders(states, 0)
    box = {"states": states}

    def sweep_block():
        box["states"], metrics = engine.run_chunk(box["states"], images, orders, 0)
        jax.block_until_ready(metrics)

    sweep_block()  # warm-up
    sweep_ms = common.median_ms(sweep_block, args.repeats) / args.steps

    # (b) a Python loop over seeds of one jitted single-seed step
    stacked = engine.init_states()
    singles = [jax.tree_util.tree_map(lambda x, k=k: x[k], stacked) for k in range(args.seeds)]
    singles = [jax.device_put(s, jax.devices()[0]) for s in singles]
    seed_orders = [train.epoch_order(s, 0, plan.n_train) for s in singles]
    step_fn = jax.jit(train.train_step, donate_argnums=0)

    @functools.partial(jax.jit, static_argnums=3)
    def batch(images, order, i, size):
        return train.to_float(images[lax.dynamic_slice_in_dim(order, i * size, size)])

    single_images = jax.device_put(images_np, jax.devices()[0])

    def loop_block():
        metrics = None
        for i in range(args.steps):
            for k in range(args.seeds):
                singles[k], metrics = step_fn(singles[k], batch(single_images, seed_orders[k], i, config.batch_size))
        jax.block_until_ready((singles, metrics))

    loop_block()  # warm-up (compiles)
    loop_ms = common.median_ms(loop_block, args.repeats) / args.steps

    ratio = loop_ms / sweep_ms
    print(f"machine: {common.machine()}")
    print(f"{args.seeds} seeds, batch {config.batch_size}, model 784-512-256-{config.latent_dim}, "
          f"median of {args.repeats} blocks of {args.steps} steps")
    print(f"(a) sweep, one program:        {sweep_ms:9.3f} ms per sweep step "
          f"-> {sweep_ms * PAPER_STEPS / 1e3:8.1f} s for 15 MNIST epochs")
    print(f"(b) Python loop over seeds:    {loop_ms:9.3f} ms per sweep step "
          f"-> {loop_ms * PAPER_STEPS / 1e3:8.1f} s for 15 MNIST epochs")
    print(f"ratio (b) / (a): {ratio:.2f}x")
    common.write(args.json, {"benchmark": "sweep_speed", "seeds": args.seeds, "steps": args.steps,
                             "repeats": args.repeats, "sweep_ms_per_step": sweep_ms,
                             "loop_ms_per_step": loop_ms, "ratio": ratio})


if __name__ == "__main__":
    main()
