"""``jaxwvae sweep``: train every seed of a sweep (and every grid point) as one compiled program.

    jaxwvae sweep --seeds 30                       # the paper's MNIST sweep (ELBO_W, adaptive λ)
    jaxwvae sweep --seeds 30 --objective kl        # ELBO_KL
    jaxwvae sweep --preset smoke --data-dir ../shared/data   # 2 seeds, 2,000 images, 1 epoch

Writes config.json, results.json, history.npz and checkpoints/ into --out; see README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

from jaxwvae import cli
from jaxwvae.errors import UserError


def parser(prog: str | None = "sweep.py") -> cli.ArgumentParser:
    """The command line of ``jaxwvae sweep``: every config field's flag, and the run's."""
    parser = cli.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train every seed of a sweep as one compiled program; writes config.json, results.json, "
                    "history.npz and checkpoints/ into --out (see README.md).",
        epilog=f"examples:\n  {prog} --seeds 30                  # the paper's MNIST sweep\n"
               f"  {prog} --seeds 30 --objective kl   # ELBO_KL\n"
               f"  {prog} --resume --out runs/mnist_w # continue a killed run")
    cli.add_common_flags(parser)
    cli.add_sweep_flags(parser)
    return parser


def pbt_fid_fitness(config, args: argparse.Namespace):
    """The ``fid`` fitness of a PBT run (:mod:`jaxwvae.evaluation.fid_fitness`), or None for another fitness."""
    if not (config.pbt_every and config.pbt_fitness == "fid"):
        return None
    from jaxwvae.engine.plan import load_split
    from jaxwvae.evaluation import fid_fitness

    return fid_fitness.for_run(config.resolved(), load_split(config.resolved(), "validation"), cli.feature_recipe(args))


def main(argv: Sequence[str], prog: str | None = "sweep.py") -> int:
    """``jaxwvae sweep`` / ``experiments/sweep.py``: one sweep of seeds as one program."""
    args = parser(prog).parse_args(argv)
    from jaxwvae.devices import distributed
    from jaxwvae.engine import sweep
    from jaxwvae.runs import runlock

    distributed.initialize(args.coordinator, args.num_processes, args.process_id, auto=args.distributed)

    if args.resume:
        if args.out is None:
            raise UserError("--resume needs --out DIR, the folder of the run to continue")
        if args.overwrite:
            raise UserError("pass --resume or --overwrite, not both")
        if distributed.is_primary():
            runlock.check_free(args.out)  # a live run holds it: name the holder first
        saved = sweep.config_for_resume(args.out, None)
        config = dataclasses.replace(saved, **cli.given_fields(args))
    else:
        config = cli.config_from_args(args)
    out = args.out or cli.default_out(config)
    results = sweep.run(config, out, resume=args.resume, overwrite=args.overwrite,
                        progress=not args.no_progress, command=["sweep.py", *argv],
                        fitness_fn=pbt_fid_fitness(config, args))
    if args.plots and distributed.is_primary():
        from jaxwvae.reports import plots

        plots.write_run_plots(out)
    t = results["timing"]
    print(f"{t['replicas']} replicas x {t['steps']} steps: compile {t['compile_s']:.1f} s, "
          f"train {t['train_s']:.1f} s on {results['device']}; results in {out}")
    collapsed = sum(1 for r in results["runs"] if (r.get("reason") or "").startswith("underfit"))
    if collapsed:
        print(f"note: {collapsed} of {len(results['runs'])} replicas ended in posterior collapse (test KL < 1 nat): "
              f"--preset paper_adaptive_slow (c = 0.0005) does not; see README.md, 'The λ study'")
    return 0
