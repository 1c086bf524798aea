"""The paper's Table 2: a 3-layer CNN trained on real images, and on real + 10,000 VAE reconstructions.

    jaxwvae table2 --seeds 30 --out runs/table1      # reads the Table 1 sweeps if present
    jaxwvae table2 --seeds 2 --epochs 1 --train-size 2000 --sizes 500,1000 --augment 500 \\
        --classifier-test-size 500 --out /tmp/t2                     # a smoke run

Runs (or reads) the ELBO_W (adaptive λ) and ELBO_KL sweeps under --out, takes each one's best seed
by FID (as in Table 1), reconstructs --augment training images with it, and trains
--classifier-seeds CNNs per cell on the originals alone, + ELBO_KL and + ELBO_W reconstructions.
Writes table2.md and table2.json into --out. --classifier-test-size is the number of the classifier's
test images (drawn from the test split, which no model trains on); --test-size is the sweeps', as in
sweep.py.

Measured: see docs/results.md for the command, machine, runtime and the numbers it produced.
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Sequence

from jaxwvae import cli


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Table 2's own flags: the original set sizes, the reconstructions added, the classifier's recipe."""
    from jaxwvae.data import augment
    from jaxwvae.evaluation import classifier
    from jaxwvae.reports import table2

    g = parser.add_argument_group("Table 2")
    g.add_argument("--sizes", type=cli.ints, default=table2.TABLE2_SIZES,
                   help="original training set sizes (default 10000,20000,60000)")
    g.add_argument("--augment", type=int, default=table2.TABLE2_AUGMENT, help="reconstructed images added (10000)")
    g.add_argument("--augment-source", choices=augment.SOURCES, default="originals",
                   help="reconstruct images inside the original set (default) or outside every original set")
    g.add_argument("--classifier-test-size", type=cli.count, default=table2.TABLE2_TEST_SIZE,
                   help=f"classifier test images, from the test split (default {table2.TABLE2_TEST_SIZE})")
    g.add_argument("--classifier-seeds", type=cli.count, default=table2.TABLE2_SEEDS,
                   help="CNNs per cell, trained at once (default 3)")
    g.add_argument("--classifier-epochs", type=cli.count, default=classifier.TABLE2_EPOCHS,
                   help=f"epochs per CNN (default {classifier.TABLE2_EPOCHS})")
    g.add_argument("--classifier-steps", type=cli.count, default=None,
                   help="train every cell for exactly N steps instead of --classifier-epochs (equal compute)")


def run(args: argparse.Namespace, common: dict, out: pathlib.Path) -> str:
    from jaxwvae.reports import table2

    common.pop("dataset", None)  # the rows' datasets come from --datasets
    report = table2.table2(out, common, sizes=args.sizes, augment=args.augment, test_size=args.classifier_test_size,
                           source=args.augment_source, classifier_seeds=args.classifier_seeds,
                           classifier_epochs=args.classifier_epochs, classifier_steps=args.classifier_steps,
                           pool=args.pool, **cli.table_options(args))
    return table2.table2_markdown(report)


def main(argv: Sequence[str], prog: str | None = "table2.py") -> int:
    return cli.report_main(argv, prog=prog, description=__doc__, stem="table2", run=run,
                           add_flags=[cli.add_table_flags, add_flags])
