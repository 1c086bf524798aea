"""The paper's Table 3: mean training loss over seeds at iterations 100, 1000, 2000 and 5000.

    jaxwvae table3 --seeds 30 --out runs/table1     # reads the Table 1 sweeps if present
    jaxwvae table3 --seeds 2 --epochs 1 --train-size 2000 --out /tmp/t3

Runs (or reads, or resumes) the ELBO_KL, ELBO_W (adaptive λ) and ELBO_W (λ = 1) sweeps under --out
and writes table3.md and table3.json. The loss is printed summed over a batch of 100 images, the
paper's unit, and per image.

Measured: see docs/results.md for the command, machine, runtime and the numbers it produced.
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Sequence

from jaxwvae import cli


def run(args: argparse.Namespace, common: dict, out: pathlib.Path) -> str:
    from jaxwvae.reports import table3

    dataset = common.pop("dataset", "mnist")
    report = table3.table3(out, common, dataset=dataset, pool=args.pool, progress=not args.no_progress)
    return table3.table3_markdown(report)


def main(argv: Sequence[str], prog: str | None = "table3.py") -> int:
    return cli.report_main(argv, prog=prog, description=__doc__, stem="table3", run=run)
