"""Command-line flags -> ``SweepConfig`` -> library; the scripts in ``experiments/`` call these.

Every flag maps to one config field; flags not given keep the preset's value,
so a saved config can be compared with what a resumed command asks for. A bad
input ends with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import pathlib
import sys
from collections.abc import Callable, Sequence

from jaxwvae import config as config_lib
from jaxwvae.config import grid
from jaxwvae.errors import ConfigError, Interrupted, UserError
from jaxwvae.runs import interrupt


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are UserErrors: one line on stderr and exit status 2 (no usage block)."""

    def error(self, message: str):
        raise UserError(f"{message}; see {self.prog} --help")


def ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip() != "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every experiment shares with sweep.py (all default to 'not given')."""
    S = argparse.SUPPRESS
    g = parser.add_argument_group("sweep")
    g.add_argument("--preset", choices=sorted(config_lib.PRESETS), default="paper_mnist",
                   help="base configuration the other flags modify (default: paper_mnist)")
    g.add_argument("--seeds", type=count, default=S, help="train seeds 0..N-1 (default 30)")
    g.add_argument("--seed-list", type=ints, default=S, help="train these seeds, e.g. 3,7,11")
    g.add_argument("--dataset", default=S, help="mnist or fashion_mnist")
    g.add_argument("--epochs", type=count, default=S, help="epochs (default 15)")
    g.add_argument("--batch-size", type=count, default=S, help="batch size (default 100)")
    g.add_argument("--train-size", type=count, default=S, help="use the first N training images")
    g.add_argument("--test-size", type=count, default=S, help="evaluate on the first N test images")
    g.add_argument("--data-dir", default=S, help="folder with the IDX files (else $JAXWVAE_DATA_DIR, cache, download)")
    g.add_argument("--out", type=pathlib.Path, default=None, help="output folder (default runs/<dataset>_<objective>_<time>)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = parser.add_argument_group("several processes (hosts); see BUILD.md")
    g.add_argument("--coordinator", default=None, help="HOST:PORT of process 0, for a multi-process run")
    g.add_argument("--num-processes", type=count, default=None, help="number of processes in the run")
    g.add_argument("--process-id", type=count, default=None, help="this process's id, 0..N-1")
    g.add_argument("--distributed", action="store_true",
                   help="join a multi-process run by JAX's auto-detection (SLURM, Open MPI, TPU pod slices)")


def add_sweep_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of one sweep's model, objective and λ rule."""
    S = argparse.SUPPRESS
    g = parser.add_argument_group("model and objective")
    g.add_argument("--objective", default=S, help="w (ELBO_W), kl (ELBO_KL) or wae (WAE-MMD)")
    g.add_argument("--lam", default=S, help="initial λ: a number, or uniform:LOW:HIGH drawn per replica")
    g.add_argument("--lambda-rule", default=S, help="arima (adaptive, default for w) or fixed")
    g.add_argument("--forecaster", default=S, help="device (default), host or statsmodels")
    g.add_argument("--arima-order", type=ints, default=S, help="p,d,q of the T forecaster (default 1,1,0)")
    g.add_argument("--lambda-c", type=number, default=S, help="step size c of the λ rule (default 0.05)")
    g.add_argument("--lambda-min", type=number, default=S, help="lower bound of the adaptive λ (default 0)")
    g.add_argument("--lambda-max", type=number, default=S, help="upper bound of the adaptive λ (default none)")
    g.add_argument("--lambda-t-scale", type=number, default=S,
                   help="1: T inside the rule's β (default); 2: the paper's printed 2T")
    g.add_argument("--lambda-sign-zero", type=number, default=S, help="sign(0) in the rule's β: 1 (default), 0 or -1")
    g.add_argument("--refit-every", type=count, default=S, help="statsmodels: refit every k steps, extend between")
    g.add_argument("--latent-dim", type=count, default=S, help="latent size m (default 20)")
    g.add_argument("--hidden", type=ints, default=S, help="encoder widths (default 512,256)")
    g.add_argument("--sigma-max-one", action="store_const", const=True, default=S,
                   help="the paper's adjusted ReLU: keep every σ <= 1")
    g.add_argument("--learning-rate", type=number, default=S, help="Adam step size (default 1e-3)")
    g.add_argument("--grid", action="append", default=S, metavar="NAME=V1,V2,...",
                   help="vary a field between replicas (repeatable; replicas = product of the lists x seeds), "
                        "e.g. --grid lambda_c=0.05,0.005 --grid lam=1,uniform:0:20; fields: "
                        + ", ".join(grid.FIELDS))
    g.add_argument("--steps-per-call", type=count, default=S, help="steps per compiled call (default 100)")
    g.add_argument("--replica-loop", choices=config_lib.REPLICA_LOOPS, default=S,
                   help="vmap: batch the replicas (GPU/TPU); map: one after another in the same program "
                        "(CPU); auto (default): map on a single CPU device, else vmap")
    g.add_argument("--checkpoint-every", type=count, default=S, help="steps between checkpoints (0: none)")
    g.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    g.add_argument("--overwrite", action="store_true", help="replace the run saved in --out")
    g.add_argument("--plots", action="store_true", help="write PNG plots of T, λ and the loss into --out")


_NOT_CONFIG = {"preset", "out", "no_progress", "resume", "overwrite", "plots", "seed_list",
               "coordinator", "num_processes", "process_id", "distributed"}


def add_table_flags(parser: argparse.ArgumentParser) -> None:
    """The flags the table scripts share: which datasets, and how FID picks and scores the models."""
    g = parser.add_argument_group("datasets and FID")
    g.add_argument("--datasets", default="mnist,fashion_mnist", help="comma-separated datasets")
    g.add_argument("--inception-weights", default=None,
                   help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth: FID on the Inception scale")
    g.add_argument("--fid-samples", type=count, default=10_000, help="samples per seed (and test images)")
    g.add_argument("--feature-train-size", type=count, default=None,
                   help="train the FID feature CNN on the first N training images (default: all)")
    g.add_argument("--feature-epochs", type=count, default=None, help="epochs of the FID feature CNN (default 3)")


def table_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of ``jaxwvae.reports.table1.table1``/``table2.table2`` set by :func:`add_table_flags`."""
    recipe = {k: v for k, v in (("train_size", args.feature_train_size), ("epochs", args.feature_epochs)) if v}
    return {"datasets": tuple(args.datasets.split(",")), "inception_weights": args.inception_weights,
            "fid_samples": args.fid_samples, "feature_recipe": recipe or None, "progress": not args.no_progress}


def given_fields(args: argparse.Namespace) -> dict:
    """The config fields the command line sets explicitly."""
    given = {k: v for k, v in vars(args).items() if k not in _NOT_CONFIG and v is not None}
    if "seeds" in given and "seed_list" in vars(args):
        raise ConfigError("pass --seeds N or --seed-list, not both")
    if "seeds" in given:
        n = given["seeds"]
        if n < 1:
            raise ConfigError(f"--seeds {n}: a sweep needs at least one seed; pass --seeds 1 or more")
        given["seeds"] = tuple(range(n))
    if "seed_list" in vars(args):
        given["seeds"] = args.seed_list
    if "grid" in given:
        given["grid"] = grid.parse(given["grid"])
    return {k: v for k, v in given.items() if k in {f.name for f in dataclasses.fields(config_lib.SweepConfig)}}


def config_from_args(args: argparse.Namespace) -> config_lib.SweepConfig:
    """The preset with every given flag applied."""
    return config_lib.PRESETS[args.preset](**given_fields(args))


def default_out(config: config_lib.SweepConfig, stem: str = "") -> pathlib.Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = stem or f"{config.dataset}_{config.objective}"
    return pathlib.Path("runs") / f"{name}_{stamp}"


def run_main(main: Callable[[Sequence[str]], int], argv: Sequence[str] | None = None) -> int:
    """Run ``main``; a UserError becomes one line on stderr and exit status 2.

    SIGINT and SIGTERM stop a sweep at its next chunk with a checkpoint
    (:mod:`jaxwvae.runs.interrupt`): one line says how to resume, exit status
    130 or 143; a second signal ends the process at once.
    """
    try:
        with interrupt.handled():
            return main(sys.argv[1:] if argv is None else argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(e, file=sys.stderr)
        return e.status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def sweep_main(argv: Sequence[str]) -> int:
    """``experiments/sweep.py``: one sweep of seeds as one program."""
    parser = ArgumentParser(
        prog="sweep.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train every seed of a sweep as one compiled program; writes config.json, results.json, "
                    "history.npz and checkpoints/ into --out (see README.md).",
        epilog="examples:\n  python experiments/sweep.py --seeds 30                  # the paper's MNIST sweep\n"
               "  python experiments/sweep.py --seeds 30 --objective kl   # ELBO_KL\n"
               "  python experiments/sweep.py --resume --out runs/mnist_w # continue a killed run")
    add_common_flags(parser)
    add_sweep_flags(parser)
    args = parser.parse_args(argv)
    from jaxwvae.engine import distributed, sweep
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
        config = dataclasses.replace(saved, **given_fields(args))
    else:
        config = config_from_args(args)
    out = args.out or default_out(config)
    results = sweep.run(config, out, resume=args.resume, overwrite=args.overwrite,
                        progress=not args.no_progress, command=["sweep.py", *argv])
    if args.plots and distributed.is_primary():
        from jaxwvae.reports import plots

        plots.write_run_plots(out)
    t = results["timing"]
    print(f"{t['replicas']} replicas x {t['steps']} steps: compile {t['compile_s']:.1f} s, "
          f"train {t['train_s']:.1f} s on {results['device']}; results in {out}")
    collapsed = sum(1 for r in results["runs"] if (r.get("reason") or "").startswith("underfit"))
    if collapsed:
        print(f"note: {collapsed} of {len(results['runs'])} replicas ended in posterior collapse (test KL < 1 nat): "
              f"--preset paper_adaptive_slow (c = 0.0005) does not; see README.md, 'The λ study'")
    return 0
