"""The λ study: every reading of the paper's λ schedule on MNIST, in one program, with FID and collapse.

    jaxwvae lambda-study --seeds 30 --out runs/lambda_study      # the full study
    jaxwvae lambda-study --seeds 2 --epochs 1 --train-size 2000 --test-size 500 \\
        --fid-samples 500 --feature-train-size 2000 --feature-epochs 1 --out /tmp/study   # a smoke run
    jaxwvae lambda-study --seeds 10 --readings section4,c0.0005 \
        --out runs/lambda_study_10                                               # chosen readings only

Runs (or reads, or resumes) three sweeps under --out: ELBO_W with every reading of λ and the
phase map's points as one grid (jaxwvae.reports.study.READINGS), ELBO_KL and WAE-MMD on the same seeds.
Writes study.md, study.json, phase_map.png, lambda_trajectories.png and figures3_4.png.

Measured: see docs/results.md, "The λ study", for the command, machine, runtime and the numbers it produced.
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Sequence

from jaxwvae import cli
from jaxwvae.errors import UserError


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The study's own flags: which readings, and the FID's."""
    parser.add_argument("--readings", type=cli.names, default=None,
                        help="comma-separated names from jaxwvae.config.readings.READINGS to run alone, "
                             "without the phase map (default: every reading and the map)")
    cli.add_fid_flags(parser.add_argument_group("FID"))


def run(args: argparse.Namespace, common: dict, out: pathlib.Path) -> str:
    from jaxwvae.reports import study

    try:
        names = study.check_names(args.readings)
    except ValueError as e:
        raise UserError(f"--readings: {e}") from None
    if common.pop("dataset", "mnist") != "mnist":
        raise UserError("the λ study runs on MNIST, the paper's dataset for Figures 3–4; drop --dataset")
    report = study.run(out, common, fid_samples=args.fid_samples, feature_recipe=cli.feature_recipe(args),
                       progress=not args.no_progress, names=names, pool=args.pool)
    return study.markdown(report)


def main(argv: Sequence[str], prog: str | None = "lambda_study.py") -> int:
    return cli.report_main(argv, prog=prog, description=__doc__, stem="lambda_study", run=run, add_flags=[add_flags])
