"""The paper's Table 3: mean training loss over seeds at iterations 100, 1000, 2000 and 5000.

    python experiments/table3.py --seeds 30 --out runs/table1     # reads the Table 1 sweeps if present
    python experiments/table3.py --seeds 2 --epochs 1 --train-size 2000 --out /tmp/t3

Runs (or reads, or resumes) the ELBO_KL, ELBO_W (adaptive λ) and ELBO_W (λ = 1) sweeps under --out
and writes table3.md and table3.json. The loss is printed summed over a batch of 100 images, the
paper's unit, and per image.

Measured: see README.md, "Results", for the command, machine, runtime and the numbers it produced.
"""

import argparse
import sys

from jaxwvae import cli


def main(argv):
    parser = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common_flags(parser)
    args = parser.parse_args(argv)
    from jaxwvae.reports import table3

    common = cli.given_fields(args)
    dataset = common.pop("dataset", "mnist")
    out = args.out or cli.default_out(cli.config_from_args(args), "table3")
    report = table3.table3(out, common, dataset=dataset, progress=not args.no_progress)
    print(table3.table3_markdown(report))
    print(f"written into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
