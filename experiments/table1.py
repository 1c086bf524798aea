"""The paper's Table 1: FID of ELBO_W (adaptive λ), ELBO_W (λ = 1 fixed), ELBO_KL and WAE-MMD.

    python experiments/table1.py --seeds 30 --out runs/table1                 # the paper's setting
    python experiments/table1.py --seeds 2 --epochs 1 --train-size 2000 --out /tmp/t1   # a smoke run

Runs (or reads, or resumes) one sweep per row under --out, samples 10,000 images per seed, and
writes table1.md, table1.json, samples_<dataset>.png and figure5_<dataset>.png into --out.
FID uses a small CNN's features unless --inception-weights is given (see README).

Measured: see README.md, "Results", for the command, machine, runtime and the numbers it produced.
"""

import argparse
import sys

from jaxwvae import cli


def main(argv):
    parser = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common_flags(parser)
    cli.add_table_flags(parser)
    args = parser.parse_args(argv)
    from jaxwvae.reports import table1

    common = cli.given_fields(args)
    common.pop("dataset", None)  # the rows' datasets come from --datasets
    out = args.out or cli.default_out(cli.config_from_args(args), "table1")
    report = table1.table1(out, common, **cli.table_options(args))
    print(table1.table1_markdown(report))
    print(f"written into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
