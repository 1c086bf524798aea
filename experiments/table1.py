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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common_flags(parser)
    parser.add_argument("--datasets", default="mnist,fashion_mnist", help="comma-separated datasets")
    parser.add_argument("--inception-weights", default=None,
                        help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth: FID on the Inception scale")
    parser.add_argument("--fid-samples", type=int, default=10_000, help="samples per seed (and test images)")
    parser.add_argument("--feature-train-size", type=int, default=None,
                        help="train the FID feature CNN on the first N training images (default: all)")
    parser.add_argument("--feature-epochs", type=int, default=None, help="epochs of the FID feature CNN (default 3)")
    args = parser.parse_args(argv)
    from jaxwvae import tables

    common = cli.given_fields(args)
    common.pop("dataset", None)  # the rows' datasets come from --datasets
    recipe = {k: v for k, v in (("train_size", args.feature_train_size), ("epochs", args.feature_epochs)) if v}
    out = args.out or cli.default_out(cli.config_from_args(args), "table1")
    report = tables.table1(out, common, datasets=tuple(args.datasets.split(",")),
                           inception_weights=args.inception_weights, fid_samples=args.fid_samples,
                           feature_recipe=recipe or None, progress=not args.no_progress)
    print(tables.table1_markdown(report))
    print(f"written into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
