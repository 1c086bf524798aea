"""The paper's Table 1: FID of ELBO_W (adaptive λ), ELBO_W (λ = 1 fixed), ELBO_KL and WAE-MMD.

    jaxwvae table1 --seeds 30 --out runs/table1                 # the paper's setting
    jaxwvae table1 --seeds 2 --epochs 1 --train-size 2000 --out /tmp/t1   # a smoke run
    jaxwvae table1 --seed-list 10-29 --out runs/table1_b        # more seeds, into a folder of their own,
    jaxwvae table1 --seeds 10 --out runs/table1 --pool runs/table1_b   # then one table of all 30

Runs (or reads, or resumes) one sweep per row under --out, pooled with the same row of every --pool
folder, samples 10,000 images per seed, and writes table1.md, table1.json, samples_<dataset>.png and
figure5_<dataset>.png into --out. FID uses a small CNN's features unless --inception-weights is
given (see docs/results.md).

Measured: see docs/results.md for the command, machine, runtime and the numbers it produced.
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Sequence

from jaxwvae import cli


def run(args: argparse.Namespace, common: dict, out: pathlib.Path) -> str:
    from jaxwvae.reports import table1

    common.pop("dataset", None)  # the rows' datasets come from --datasets
    return table1.table1_markdown(table1.table1(out, common, pool=args.pool, **cli.table_options(args)))


def main(argv: Sequence[str], prog: str | None = "table1.py") -> int:
    return cli.report_main(argv, prog=prog, description=__doc__, stem="table1", run=run,
                           add_flags=[cli.add_table_flags])
