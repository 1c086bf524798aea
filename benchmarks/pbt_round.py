"""What population-based training costs: one round, its fitness, and the training it sits between.

On the paper's model (batch 100) with ``--populations`` seeds × ``--members`` grid points over λ:
  round      one compiled exploit/explore round over the stacked states (select, gather, perturb);
  elbo       the ``elbo`` fitness: every replica evaluated on the validation images;
  fid        the ``fid`` fitness (``--fid``): each replica's prior samples, as many as validation
             images, against them on Table 1's CNN features (jaxwvae/evaluation/fid_fitness.py);
  chunk      one compiled call of ``--chunk`` training steps of every replica.
An epoch's training is ``steps_per_epoch / chunk`` chunks (measured per chunk, multiplied: the
chunks of an epoch are identical calls). Medians over ``--repeats`` in one run; the ratios are
the issue's targets: round ≤ 1 % of an epoch, and (round + fitness) per epoch as a share of it.

``--whole-run EPOCHS`` times instead whole ``experiments/sweep.py`` processes, alternately with
``--pbt-fitness fid`` every epoch and without PBT (the same grid and the same validation images
held out), and gives the median wall time of each and the median of the pairwise ratios.

OpenBLAS runs on one thread (``OPENBLAS_NUM_THREADS=1`` unless set, for the sweep.py processes
too): on 2 cores shared with another job, its threads made a 128-d Fréchet distance 150x slower
(2 threads 280 ms, 1 thread 1.8 ms; measured 2026-12-02).

    python benchmarks/pbt_round.py --populations 30 --members 8 --fid --data-dir ../shared/data
    python benchmarks/pbt_round.py --populations 4 --members 4 --whole-run 3 --data-dir ../shared/data
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # before NumPy loads: the FID's 128 x 128 eigendecompositions on one OpenBLAS thread
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import common  # noqa: E402
import jax  # noqa: E402

from jaxwvae import config as config_lib  # noqa: E402
from jaxwvae.devices import distributed  # noqa: E402
from jaxwvae.engine.plan import load_split, make_plan  # noqa: E402
from jaxwvae.engine.population import Population  # noqa: E402
from jaxwvae.engine.program import Program  # noqa: E402

LAMBDAS = (0.25, 0.5, 1, 2, 4, 8, 16, 32)
SWEEP = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "sweep.py"


def measure(*, populations: int, members: int, chunk: int, validation_size: int, repeats: int, data_dir=None,
            fid: bool = False, feature_recipe: dict | None = None, **model) -> dict:
    """Medians (ms) of a round, the elbo fitness, the fid fitness (with ``fid``) and a chunk of training.

    ``feature_recipe`` shrinks the fid fitness's feature CNN (as ``--feature-train-size``); it is
    trained once and cached, before anything is timed.
    """
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
    if fid:
        from jaxwvae.evaluation import fid_fitness

        validation_u8 = load_split(config, "validation")
        fid_population = Population.build(dataclasses.replace(config, pbt_fitness="fid"), program, validation_u8,
                                          fid_fitness.for_run(config, validation_u8, feature_recipe))

        def fid_fit():
            fid_population.fitness(holder["states"])

        fid_fit()  # compile the decoder and the feature CNN once

    def one_round():  # the compiled round alone: the fitness is timed on its own
        holder["states"], record = population.compiled_round(holder["states"], fit, jax.numpy.int32(0))
        jax.block_until_ready(record)

    train(), one_round(), fitness()  # compile each once before timing
    chunk_ms = common.median_ms(train, repeats)
    round_ms = common.median_ms(one_round, repeats)
    fitness_ms = common.median_ms(fitness, repeats)
    epoch_ms = chunk_ms * plan.steps_per_epoch / plan.chunk
    ms = {"round": round_ms, "elbo_fitness": fitness_ms, "chunk": chunk_ms, "epoch": epoch_ms}
    out = {"populations": populations, "members": members, "replicas": plan.replicas, "chunk": plan.chunk,
           "steps_per_epoch": plan.steps_per_epoch, "validation_size": validation_size,
           "hidden": list(config.hidden), "latent_dim": config.latent_dim, "ms": ms,
           "round_share_of_epoch": round_ms / epoch_ms, "round_and_elbo_share_of_epoch": (round_ms + fitness_ms)
           / epoch_ms}
    if fid:
        ms["fid_fitness"] = common.median_ms(fid_fit, repeats)
        out.update(fid_samples=validation_size, feature_recipe=feature_recipe or "default",
                   round_and_fid_share_of_epoch=(round_ms + ms["fid_fitness"]) / epoch_ms)
    return out


def sweep_commands(*, populations: int, members: int, epochs: int, validation_size: int, train_size=None,
                   data_dir=None, feature_train_size=None) -> tuple[list[str], list[str]]:
    """``(with PBT, without)``: sweep.py commands of the same grid and split, the first with a fid round per epoch."""
    n_train = (train_size or 60_000 - validation_size)
    every = n_train // 100  # steps per epoch at the paper's batch of 100
    grid = ",".join(f"{v:g}" for v in LAMBDAS[:members])
    base = [sys.executable, str(SWEEP), "--seeds", str(populations), "--grid", f"lam={grid}", "--lambda-rule",
            "fixed", "--epochs", str(epochs), "--validation-size", str(validation_size), "--no-progress",
            *(["--train-size", str(train_size)] if train_size else []),
            *(["--data-dir", str(data_dir)] if data_dir else [])]
    pbt = [*base, "--pbt-every", str(every), "--pbt-fitness", "fid",
           *(["--feature-train-size", str(feature_train_size)] if feature_train_size else [])]
    return pbt, base


def whole_run(*, repeats: int, **kw) -> dict:
    """Wall seconds of whole sweep.py processes, with a fid round every epoch and without, alternately.

    One warm-up pair first (it also trains and caches the feature CNN if need be), then ``repeats``
    pairs; each ratio is the median of the pairwise ratios, so a drift in the machine's speed cancels.
    Besides wall seconds, each process's CPU seconds (user + system): on a CPU shared with another
    job, the wall time also counts the time the other job took, the CPU time much less so.
    """
    commands = dict(zip(("pbt", "plain"), sweep_commands(**kw)))
    walls, cpus, train_s = ({"pbt": [], "plain": []} for _ in range(3))
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(repeats + 1):
            for name, cmd in commands.items():
                out = pathlib.Path(tmp) / f"{name}-{k}"
                start, used = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run([*cmd, "--out", str(out)], check=True, capture_output=True)
                if k:  # the first pair is the warm-up
                    walls[name].append(time.perf_counter() - start)
                    now = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpus[name].append(now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime)
                    train_s[name].append(json.loads((out / "results.json").read_text())["timing"]["train_s"])
    ratios = [a / b for a, b in zip(walls["pbt"], walls["plain"])]
    cpu_ratios = [a / b for a, b in zip(cpus["pbt"], cpus["plain"])]
    return {"benchmark": "pbt_whole_run", **{k: v for k, v in kw.items() if k != "data_dir"}, "repeats": repeats,
            "rounds": kw["epochs"] - 1, "commands": {k: ["experiments/sweep.py", *v[2:]] for k, v in commands.items()},
            "wall_s": walls, "cpu_s": cpus, "train_s": train_s,
            "median_wall_s": {k: statistics.median(v) for k, v in walls.items()},
            "median_cpu_s": {k: statistics.median(v) for k, v in cpus.items()},
            "median_train_s": {k: statistics.median(v) for k, v in train_s.items()},
            "ratio_wall": statistics.median(ratios), "ratios": ratios,
            "ratio_cpu": statistics.median(cpu_ratios), "cpu_ratios": cpu_ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--populations", type=int, default=30)
    parser.add_argument("--members", type=int, default=8, choices=range(2, len(LAMBDAS) + 1))
    parser.add_argument("--chunk", type=int, default=10, help="training steps per timed call")
    parser.add_argument("--validation-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fid", action="store_true", help="time the fid fitness too")
    parser.add_argument("--feature-train-size", type=int, default=None,
                        help="the fid fitness's feature CNN on fewer training images (default: the full recipe)")
    parser.add_argument("--whole-run", type=int, default=0, metavar="EPOCHS",
                        help="time whole sweep.py runs of EPOCHS epochs with a fid round per epoch and without")
    parser.add_argument("--train-size", type=int, default=None, help="--whole-run: training images (default: all)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="append the result to this JSON file")
    args = parser.parse_args()
    if args.whole_run:
        out = whole_run(populations=args.populations, members=args.members, epochs=args.whole_run,
                        validation_size=args.validation_size, train_size=args.train_size, data_dir=args.data_dir,
                        feature_train_size=args.feature_train_size, repeats=args.repeats)
        print(f"machine: {common.machine()}")
        print(f"{args.populations} populations x {args.members} members, {args.whole_run} epochs, "
              f"{out['rounds']} fid rounds; medians of {args.repeats} whole sweep.py runs")
        print(f"  with a fid round per epoch {out['median_wall_s']['pbt']:8.1f} s   "
              f"without PBT {out['median_wall_s']['plain']:8.1f} s   ratio {out['ratio_wall']:.3f} "
              f"(pairs {', '.join(f'{r:.3f}' for r in out['ratios'])})")
        print(f"  CPU seconds: {out['median_cpu_s']['pbt']:.1f} and {out['median_cpu_s']['plain']:.1f}, "
              f"ratio {out['ratio_cpu']:.3f} (pairs {', '.join(f'{r:.3f}' for r in out['cpu_ratios'])})")
        common.write(args.json, {**out, "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS")})
        return
    recipe = {"train_size": args.feature_train_size} if args.feature_train_size else None
    out = measure(populations=args.populations, members=args.members, chunk=args.chunk,
                  validation_size=args.validation_size, repeats=args.repeats, data_dir=args.data_dir,
                  fid=args.fid, feature_recipe=recipe)
    ms = out["ms"]
    print(f"machine: {common.machine()}")
    print(f"{out['populations']} populations x {out['members']} members = {out['replicas']} replicas, "
          f"{out['steps_per_epoch']} steps per epoch; medians of {args.repeats}")
    print(f"  round (exploit + explore)     {ms['round']:10.1f} ms   {100 * out['round_share_of_epoch']:.3f} % of an epoch")
    print(f"  elbo fitness ({out['validation_size']} images)   {ms['elbo_fitness']:10.1f} ms")
    print(f"  {out['chunk']} training steps            {ms['chunk']:10.1f} ms  -> epoch {ms['epoch'] / 1e3:.1f} s")
    print(f"  round + elbo fitness, once per epoch: {100 * out['round_and_elbo_share_of_epoch']:.2f} % of an epoch")
    if args.fid:
        print(f"  fid fitness ({out['validation_size']} samples per replica) {ms['fid_fitness']:10.1f} ms")
        print(f"  round + fid fitness, once per epoch: {100 * out['round_and_fid_share_of_epoch']:.2f} % of an epoch")
    common.write(args.json, {"benchmark": "pbt_round", **out, "ms": ms,
                             "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS")})


if __name__ == "__main__":
    main()
