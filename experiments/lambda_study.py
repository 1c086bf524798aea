"""The λ study: every reading of the paper's λ schedule on MNIST, in one program, with FID and collapse.

    python experiments/lambda_study.py --seeds 30 --out runs/lambda_study      # the full study
    python experiments/lambda_study.py --seeds 2 --epochs 1 --train-size 2000 --test-size 500 \\
        --fid-samples 500 --feature-train-size 2000 --feature-epochs 1 --out /tmp/study   # a smoke run
    python experiments/lambda_study.py --seeds 10 --readings section4,c0.0005 \
        --out runs/lambda_study_10                                               # chosen readings only

Runs (or reads, or resumes) three sweeps under --out: ELBO_W with every reading of λ and the
phase map's points as one grid (jaxwvae.reports.study.READINGS), ELBO_KL and WAE-MMD on the same seeds.
Writes study.md, study.json, phase_map.png, lambda_trajectories.png and figures3_4.png.

Measured: see README.md, "The λ study", for the command, machine, runtime and the numbers it produced.
"""

import argparse
import sys

from jaxwvae import cli


def main(argv):
    parser = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_common_flags(parser)
    parser.add_argument("--readings", type=lambda s: tuple(v.strip() for v in s.split(",") if v.strip()),
                        default=None, help="comma-separated names from jaxwvae.config.readings.READINGS to run alone, "
                                           "without the phase map (default: every reading and the map)")
    cli.add_fid_flags(parser.add_argument_group("FID"))
    args = parser.parse_args(argv)
    from jaxwvae.reports import study

    try:
        names = study.check_names(args.readings)
    except ValueError as e:
        raise cli.UserError(f"--readings: {e}") from None

    common = cli.given_fields(args)
    if common.pop("dataset", "mnist") != "mnist":
        raise cli.UserError("the λ study runs on MNIST, the paper's dataset for Figures 3–4; drop --dataset")
    out = args.out or cli.default_out(cli.config_from_args(args), "lambda_study")
    report = study.run(out, common, fid_samples=args.fid_samples, feature_recipe=cli.feature_recipe(args),
                       progress=not args.no_progress, names=names)
    print(study.markdown(report))
    print(f"written into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_main(main))
