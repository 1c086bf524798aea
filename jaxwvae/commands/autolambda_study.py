"""ELBO_W's automatic λ rules (the paper's, pi, geco) against λ fixed, on FID, on the same validation split.

    jaxwvae autolambda-study --seeds 10 --data-dir ../shared/data --out runs/autolambda     # MNIST, 10 arms
    jaxwvae autolambda-study --seeds 2 --epochs 1 --train-size 2000 --test-size 500 --fid-samples 500 \\
        --feature-train-size 2000 --feature-epochs 1 --validation-size 500 --out /tmp/auto      # a smoke run

Runs (or reads, or resumes) under --out, pooled with each --pool folder's: one sweep whose grid
points are ELBO_W's arms (jaxwvae.reports.autolambda.ARMS), two PBT sweeps over its λ (--groups pbt)
and ELBO_KL's and WAE-MMD's grids and PBT sweeps (--groups fair); picks every best fixed weight on
the validation FID; writes autolambda.md, autolambda.json, autolambda_lambda.png and
autolambda_fid.png.
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Sequence

from jaxwvae import cli
from jaxwvae.errors import UserError


def add_flags(parser: argparse.ArgumentParser) -> None:
    cli.add_fid_flags(parser.add_argument_group("FID"))
    parser.add_argument("--groups", type=cli.names, default=("w", "pbt", "fair"),
                        help="which sweeps: w (ELBO_W's arms), pbt (PBT over ELBO_W's λ, fid and elbo fitness), "
                             "fair (ELBO_KL and WAE-MMD tuned alike); default all")
    g = parser.add_argument_group("validation and model")
    for name in ("validation_size", "hidden", "latent_dim"):
        cli.add_field_flag(g, name)


def run(args: argparse.Namespace, common: dict, out: pathlib.Path) -> str:
    from jaxwvae.reports import autolambda

    if common.pop("dataset", "mnist") != "mnist":
        raise UserError("the automatic-λ study runs on MNIST; drop --dataset")
    unknown = sorted(set(args.groups) - set(autolambda.GROUPS))
    if unknown or "w" not in args.groups:
        raise UserError(f"--groups {','.join(args.groups)}: choose among {', '.join(autolambda.GROUPS)}, "
                        "always with w (the reference arms)")
    report = autolambda.run(out, common, fid_samples=args.fid_samples, feature_recipe=cli.feature_recipe(args),
                            pool=args.pool, progress=not args.no_progress, groups=args.groups)
    return autolambda.markdown(report)


def main(argv: Sequence[str], prog: str | None = "autolambda_study.py") -> int:
    return cli.report_main(argv, prog=prog, description=__doc__, stem="autolambda", run=run, add_flags=[add_flags])
