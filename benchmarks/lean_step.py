"""The library's compiled step against a bare one: XLA's FLOPs and bytes accessed, and time, side by side.

The bare step is the least a vmapped seed sweep must do per step: the same Flax MLP VAE and ELBO_W
loss, Adam, the batch gathered from the device-resident images, λ fixed, no divergence check, no
λ rule, no metrics beyond the loss. It lives here as the reference and nowhere else. Printed per
variant: XLA's cost analysis of one vmapped step (FLOPs, bytes accessed) and its ratio to the bare
step's, and the median time of a compiled chunk of steps over every seed (``--steps`` steps).

    python benchmarks/lean_step.py --seeds 30 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import functools

import common
import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxwvae import config as config_lib
from jaxwvae import losses
from jaxwvae.core.models import VAE
from jaxwvae.data import pixels
from jaxwvae.engine.plan import load_split, make_plan
from jaxwvae.engine.program import Program
from jaxwvae.replica import train


def bare_step(model, tx, lam, params, opt_state, key, images_u8, order, i, *, batch_size: int):
    """One Adam step of ELBO_W at fixed λ on batch ``i`` of ``order``: nothing else."""
    idx = lax.dynamic_slice_in_dim(order, i * batch_size, batch_size)
    x = images_u8[idx].astype(jnp.float32) / 255.0

    def loss_fn(p):
        out = model.apply(p, x, jax.random.fold_in(key, i))
        return jnp.mean(losses.bernoulli_nll(out.logits, x) + lam * losses.w2_squared(out.mu, out.logvar))

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


def cost(compiled) -> dict:
    c = compiled.cost_analysis() or {}
    c = c[0] if isinstance(c, list) else c
    return {"flops": float(c.get("flops", float("nan"))), "bytes": float(c.get("bytes accessed", float("nan")))}


def measure(*, seeds: int, steps: int, repeats: int, data_dir=None, train_size=None, **model) -> dict:
    """Cost analysis of both steps (vmapped over ``seeds``) and their median ms per sweep step.

    ``model``: ``hidden`` / ``latent_dim`` other than the paper's (a smoke run's smaller model).
    """
    config = config_lib.paper_mnist(seeds=tuple(range(seeds)), data_dir=data_dir, train_size=train_size,
                                    steps_per_call=steps, replica_loop="vmap", **model).resolved()
    images_np = load_split(config, "train")
    plan = make_plan(config, len(images_np), jax.device_count())
    program = Program.compile(config, plan, images_np.shape[1])
    images = program.put_images(images_np)
    states = program.init_states()
    orders = program.orders(states, 0)

    # the library's step, vmapped, on the batch it would gather (the gather is in both variants)
    def library_step(states, images, orders, i):
        def one(state, order):
            idx = lax.dynamic_slice_in_dim(order, i * config.batch_size, config.batch_size)
            return train.train_step(state, pixels.to_float(images[idx]))

        return jax.vmap(one)(states, orders)

    lib = jax.jit(library_step, donate_argnums=0).lower(states, images, orders, 0).compile()

    model = VAE(config.hidden, config.latent_dim, images_np.shape[1])
    tx = optax.adam(config.learning_rate)
    params = states.params
    opt_state = jax.vmap(tx.init)(params)
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(seeds))
    step = functools.partial(bare_step, model, tx, 1.0, batch_size=config.batch_size)
    vstep = jax.vmap(step, in_axes=(0, 0, 0, None, 0, None))
    bare = jax.jit(vstep, donate_argnums=(0, 1)).lower(params, opt_state, keys, images, orders, 0).compile()

    out = {"seeds": seeds, "hidden": list(config.hidden), "latent_dim": config.latent_dim, "replica_loop": "vmap",
           "library": cost(lib), "bare": cost(bare)}
    out["ratio_bytes"] = out["library"]["bytes"] / out["bare"]["bytes"]
    out["ratio_flops"] = out["library"]["flops"] / out["bare"]["flops"]

    # time: a chunk of --steps steps of every seed, each variant compiled once
    def bare_chunk(params, opt_state, keys, images, orders):
        def body(carry, i):
            p, o = carry
            p, o, loss = vstep(p, o, keys, images, orders, i)
            return (p, o), loss

        return lax.scan(body, (params, opt_state), jnp.arange(plan.chunk))

    bare_fn = jax.jit(bare_chunk)
    box = {"lib": common.sweep_block(program, images)}

    def run_bare():
        jax.block_until_ready(bare_fn(params, opt_state, keys, images, orders))

    run_bare()
    box["lib"]()
    out["steps"], out["repeats"] = plan.chunk, repeats
    out["ms_per_step"] = {
        "library": common.median_ms(box["lib"], repeats) / plan.chunk,
        "bare": common.median_ms(run_bare, repeats) / plan.chunk,
    }
    out["ratio_time"] = out["ms_per_step"]["library"] / out["ms_per_step"]["bare"]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed chunk")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="append the result to this JSON file")
    args = parser.parse_args()
    out = measure(seeds=args.seeds, steps=args.steps, repeats=args.repeats, data_dir=args.data_dir)
    print(common.machine())
    for name in ("bare", "library"):
        c = out[name]
        print(f"{name:8s} {c['flops'] / 1e9:8.2f} GFLOP  {c['bytes'] / 1e9:8.3f} GB accessed  "
              f"{out['ms_per_step'][name]:8.1f} ms per sweep step")
    print(f"library / bare: bytes {out['ratio_bytes']:.3f}x, FLOPs {out['ratio_flops']:.3f}x, "
          f"time {out['ratio_time']:.3f}x")
    common.write(args.json, {"benchmark": "lean_step", **out})


if __name__ == "__main__":
    main()
