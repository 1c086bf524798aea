"""What population-based training costs: one round, its fitness, and the training it sits between.

On the paper's model (batch 100) with ``--populations`` seeds × ``--members`` grid points over λ:
  round      one compiled exploit/explore round over the stacked states (select, gather, perturb);
  elbo       the ``elbo`` fitness: every replica evaluated on the validation images;
  chunk      one compiled call of ``--chunk`` training steps of every replica.
An epoch's training is ``steps_per_epoch / chunk`` chunks (measured per chunk, multiplied: the
chunks of an epoch are identical calls). Medians over ``--repeats`` in one run; the ratios are
the issue's targets: round ≤ 1 % of an epoch, and (round + fitness) per epoch as a share of it.

    python benchmarks/pbt_round.py --populations 30 --members 8 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse

import common
import jax

from jaxwvae import config as config_lib
from jaxwvae.devices import distributed
from jaxwvae.engine.plan import load_split, make_plan
from jaxwvae.engine.population import Population
from jaxwvae.engine.program import Program

LAMBDAS = (0.25, 0.5, 1, 2, 4, 8, 16, 32)


def measure(*, populations: int, members: int, chunk: int, validation_size: int, repeats: int, data_dir=None,
            **model) -> dict:
    grid = tuple((("lam", f"{v:g}"),) for v in LAMBDAS[:members])
    config = config_lib.paper_mnist(seeds=tuple(range(populations)), lambda_rule="fixed", grid=grid,
                                    pbt_every=chunk, validation_size=validation_size, steps_per_call=chunk,
                                    checkpoint_every=0, data_dir=data_dir, **model).resolved()
    train_u8 = load_split(config, "train")
    plan = make_plan(config, len(train_u8), jax.device_count())
    program = Program.compile(config, plan, train_u8.shape[1])
    population = Population.build(config, program, load_split(config, "validation"))
    images = program.put_images(train_u8)
    states = program.init_states()
    orders = program.orders(states, 0)
    holder = {"states": states}

    def train():
        holder["states"], metrics = program.run(holder["states"], images, orders, 0)
        jax.block_until_ready(metrics)

    def fitness():
        population.fitness(holder["states"])

    fit = distributed.put(population.fitness(holder["states"]), program.sharded)

    def one_round():  # the compiled round alone: the fitness is timed on its own
        holder["states"], record = population.compiled_round(holder["states"], fit, jax.numpy.int32(0))
        jax.block_until_ready(record)

    train(), one_round(), fitness()  # compile each once before timing
    chunk_ms = common.median_ms(train, repeats)
    round_ms = common.median_ms(one_round, repeats)
    fitness_ms = common.median_ms(fitness, repeats)
    epoch_ms = chunk_ms * plan.steps_per_epoch / plan.chunk
    return {"populations": populations, "members": members, "replicas": plan.replicas, "chunk": plan.chunk,
            "steps_per_epoch": plan.steps_per_epoch, "validation_size": validation_size,
            "hidden": list(config.hidden), "latent_dim": config.latent_dim,
            "ms": {"round": round_ms, "elbo_fitness": fitness_ms, "chunk": chunk_ms, "epoch": epoch_ms},
            "round_share_of_epoch": round_ms / epoch_ms, "round_and_elbo_share_of_epoch": (round_ms + fitness_ms)
            / epoch_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--populations", type=int, default=30)
    parser.add_argument("--members", type=int, default=8, choices=range(2, len(LAMBDAS) + 1))
    parser.add_argument("--chunk", type=int, default=10, help="training steps per timed call")
    parser.add_argument("--validation-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="append the result to this JSON file")
    args = parser.parse_args()
    out = measure(populations=args.populations, members=args.members, chunk=args.chunk,
                  validation_size=args.validation_size, repeats=args.repeats, data_dir=args.data_dir)
    ms = out["ms"]
    print(f"machine: {common.machine()}")
    print(f"{out['populations']} populations x {out['members']} members = {out['replicas']} replicas, "
          f"{out['steps_per_epoch']} steps per epoch; medians of {args.repeats}")
    print(f"  round (exploit + explore)     {ms['round']:10.1f} ms   {100 * out['round_share_of_epoch']:.3f} % of an epoch")
    print(f"  elbo fitness ({out['validation_size']} images)   {ms['elbo_fitness']:10.1f} ms")
    print(f"  {out['chunk']} training steps            {ms['chunk']:10.1f} ms  -> epoch {ms['epoch'] / 1e3:.1f} s")
    print(f"  round + elbo fitness, once per epoch: {100 * out['round_and_elbo_share_of_epoch']:.2f} % of an epoch")
    common.write(args.json, {"benchmark": "pbt_round", **out, "ms": ms})


if __name__ == "__main__":
    main()
