"""``jaxwvae sweep``: train every seed of a sweep (and every grid point) as one compiled program.

    jaxwvae sweep --seeds 30                       # the paper's MNIST sweep (ELBO_W, adaptive λ)
    jaxwvae sweep --seeds 30 --objective kl        # ELBO_KL
    jaxwvae sweep --preset smoke --data-dir ../shared/data   # 2 seeds, 2,000 images, 1 epoch

Writes config.json, results.json, history.npz and checkpoints/ into --out; see README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import warnings
from collections.abc import Sequence

from jaxwvae import cli
from jaxwvae.errors import RunWarning, UserError


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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RunWarning)
        results = sweep.run(config, out, resume=args.resume, overwrite=args.overwrite,
                            progress=not args.no_progress, command=["sweep.py", *argv],
                            fitness_fn=pbt_fid_fitness(config, args), tensorboard=args.tensorboard)
    for w in caught:  # the run's own notes are printed below; anything else is shown as usual
        if not issubclass(w.category, RunWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if args.plots and distributed.is_primary():
        from jaxwvae.reports import plots

        plots.write_run_plots(out)
    if distributed.is_primary():
        print("\n".join(summary_lines(results, pathlib.Path(out), prog, plotted=args.plots)))
        for w in caught:
            if issubclass(w.category, RunWarning):
                print(f"note: {w.message}")
    return 0


def _cell(value, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def summary_lines(results: dict, out: pathlib.Path, prog: str | None, *, plotted: bool) -> list[str]:
    """The run's last lines: a table per grid point, the time, where the files are and what to run next."""
    points = results["points"]
    term = points[0]["term"]
    term_label = {"w2": "W2²", "kl": "KL", "mmd": "MMD"}[term]
    header = ["point", "n", "test loss", "rec", term_label, "T", "final λ", "collapsed", "diverged", "excluded"]
    rows = [[", ".join(f"{k}={v}" for k, v in p["hyper"].items()) or "all", str(p["n"]), _cell(p["loss"]),
             _cell(p["rec"]), _cell(p[term], 2 if term != "mmd" else 4), _cell(p["t_gap"], 2),
             _cell(p["lam_final"], 3), str(p["collapsed"]), str(p["diverged"]), str(p["excluded"])] for p in points]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["", "per grid point, medians over seeds of the per-image test metrics:"]
    lines += ["  " + "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
              for r in [header, *rows]]
    t = results["timing"]
    lines.append(f"{t['replicas']} replicas x {t['steps']} steps: compile {t['compile_s']:.1f} s, "
                 f"train {t['train_s']:.1f} s on {results['device']}")
    pictures = sorted(p.name for p in out.glob("*.png"))
    board = " tensorboard/ (one run per replica)," if (out / "tensorboard").is_dir() else ""
    lines.append(f"files in {out}: config.json, results.json (per replica), history.npz (per step),{board} "
                 "checkpoints/" + (f"; plots: {', '.join(pictures)}" if pictures else ""))
    me = "python experiments/sweep.py" if (prog or "sweep.py").endswith(".py") else prog
    lines.append(f"next: {me} --resume --out {out} --plots (the pictures)" if not plotted else
                 "next: jaxwvae table1 (every objective, FID with intervals and tests; see docs/results.md)")
    return lines
