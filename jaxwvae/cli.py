"""Command-line flags -> ``SweepConfig`` -> library; the commands of :mod:`jaxwvae.commands` call these.

The config's flags are made from :class:`~jaxwvae.config.SweepConfig`'s fields
(``--field-name`` sets ``field_name``; its help, type and choices come from the field);
the others (``--out``, ``--resume``, ``--preset``, ...) are written out below. Flags not
given keep the preset's value, so a saved config can be compared with what a resumed
command asks for. A bad input ends with one line on stderr and exit status 2, never a
traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import pathlib
import sys
import types
import typing
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
    """``"3,7,11"`` or with ranges ``"0-9,20-29"`` (both ends included) as a tuple of integers."""
    out = []
    try:
        for part in (v.strip() for v in text.split(",")):
            if not part:
                continue
            first, sep, last = part.partition("-")
            if sep and first:  # a range a-b (a leading "-" is a negative number)
                lo, hi = int(first), int(last)
                if hi < lo:
                    raise argparse.ArgumentTypeError(f"{part!r}: a range runs from low to high, e.g. 10-29")
                out += range(lo, hi + 1)
            else:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers or ranges "
                                         "(e.g. 0-9,20)") from None
    return tuple(out)


def count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def names(text: str) -> tuple[str, ...]:
    """``"lam,lambda_c"`` as ``("lam", "lambda_c")``."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


_FIELDS = {f.name: f for f in dataclasses.fields(config_lib.SweepConfig)}
_HINTS = typing.get_type_hints(config_lib.SweepConfig)

# The config fields every experiment takes (add_common_flags); the others are sweep.py's (add_sweep_flags).
COMMON_FIELDS = ("seeds", "dataset", "epochs", "batch_size", "train_size", "test_size", "data_dir")


def _value_parser(hint) -> Callable | None:
    """The argparse ``type`` of a field's annotation (``X | None`` as ``X``): None for text, ``bool`` for a switch."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:  # integers (1,1,0 or 512,256) or names (lam,lambda_c)
        return {int: ints, str: names}.get(typing.get_args(hint)[0])
    return {int: count, float: number, str: None, bool: bool}[hint]


def _shown(value) -> str:
    """A default as the help prints it ('' for none)."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def field_help(name: str, default: str | None = None) -> str:
    """The help of field ``name`` (its ``metadata["help"]``) with its default."""
    f = _FIELDS[name]
    shown = _shown(f.default) if default is None else default
    return (f.metadata["help"] + (f" (default {shown})" if shown else "")).replace("%", "%%")


def add_field_flag(group, name: str, **overrides) -> None:
    """``--field-name`` for config field ``name``, typed by its annotation; not given: absent from the args.

    A field that names a registry entry lists its choices in the usage; the config checks the value
    (:meth:`~jaxwvae.config.SweepConfig.validate`), so the message is the same for a flag, a grid and a saved config.
    """
    f = _FIELDS[name]
    kwargs = {"default": argparse.SUPPRESS, "help": field_help(name)}
    parse = _value_parser(_HINTS[name])
    if parse is bool:
        kwargs.update(action="store_const", const=True)
    elif parse is not None:
        kwargs["type"] = parse
    if f.metadata["choices"]:
        kwargs["metavar"] = "{" + ",".join(f.metadata["choices"]) + "}"
    kwargs.update(overrides)
    group.add_argument(_flag(name), **kwargs)


def preset_line(name: str) -> str:
    """The first line of preset ``name``'s docstring, without its trailing period."""
    return (config_lib.PRESETS[name].__doc__ or "").strip().splitlines()[0].rstrip(".")


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every experiment shares with sweep.py (all default to 'not given')."""
    g = parser.add_argument_group("sweep")
    g.add_argument("--preset", choices=sorted(config_lib.PRESETS), default="paper_mnist", metavar="PRESET",
                   help="base configuration the other flags modify (default: paper_mnist): " + "; ".join(
                       f"{name}: {preset_line(name)}" for name in config_lib.PRESETS))
    for name in COMMON_FIELDS:
        if name == "seeds":  # a count N of seeds 0..N-1, or the seeds themselves by --seed-list
            add_field_flag(g, name, type=count, help=field_help(name, str(len(_FIELDS[name].default))))
            g.add_argument("--seed-list", type=ints, default=argparse.SUPPRESS,
                           help="train these seeds, e.g. 3,7,11 or 10-29")
        else:
            add_field_flag(g, name)
    g.add_argument("--out", type=pathlib.Path, default=None, help="output folder (default runs/<dataset>_<objective>_<time>)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = parser.add_argument_group("several processes (hosts); see BUILD.md")
    g.add_argument("--coordinator", default=None, help="HOST:PORT of process 0, for a multi-process run")
    g.add_argument("--num-processes", type=count, default=None, help="number of processes in the run")
    g.add_argument("--process-id", type=count, default=None, help="this process's id, 0..N-1")
    g.add_argument("--distributed", action="store_true",
                   help="join a multi-process run by JAX's auto-detection (SLURM, Open MPI, TPU pod slices)")


def add_sweep_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of one sweep's model, objective and λ rule: every config field :func:`add_common_flags` leaves."""
    g = parser.add_argument_group("model and objective")
    for name in _FIELDS:
        if name == "grid":  # NAME=V1,V2,..., repeated: the product of the lists (jaxwvae.config.grid)
            add_field_flag(g, name, action="append", metavar="NAME=V1,V2,...",
                           help=field_help(name) + "; fields: " + ", ".join(grid.FIELDS))
        elif name not in COMMON_FIELDS:
            add_field_flag(g, name)
    g = parser.add_argument_group("the run folder")
    g.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    g.add_argument("--overwrite", action="store_true", help="replace the run saved in --out")
    g.add_argument("--plots", action="store_true",
                   help="write PNG plots of T, λ and the loss, prior samples and test reconstructions into --out")
    g.add_argument("--tensorboard", action="store_true",
                   help="one TensorBoard run per replica in --out/tensorboard, written as it trains (needs "
                        "pip install 'jaxwvae[tensorboard]'); view with: tensorboard --logdir OUT/tensorboard")
    g = parser.add_argument_group("PBT's fid fitness (--pbt-fitness fid): its feature CNN")
    g.add_argument("--feature-train-size", type=count, default=None,
                   help="train the FID feature CNN on the first N training images (default: all)")
    g.add_argument("--feature-epochs", type=count, default=None, help="epochs of the FID feature CNN (default 3)")


def add_fid_flags(group) -> None:
    """How many samples FID compares, and the recipe of the small feature CNN (:func:`feature_recipe`)."""
    group.add_argument("--fid-samples", type=count, default=10_000, help="samples per seed (and test images)")
    group.add_argument("--feature-train-size", type=count, default=None,
                       help="train the FID feature CNN on the first N training images (default: all)")
    group.add_argument("--feature-epochs", type=count, default=None,
                       help="epochs of the FID feature CNN (default 3)")


def feature_recipe(args: argparse.Namespace) -> dict | None:
    """The FID feature CNN's recipe that :func:`add_fid_flags` sets (None: the default one)."""
    recipe = {k: v for k, v in (("train_size", args.feature_train_size), ("epochs", args.feature_epochs)) if v}
    return recipe or None


def add_table_flags(parser: argparse.ArgumentParser) -> None:
    """The flags the table scripts share: which datasets, and how FID picks and scores the models."""
    g = parser.add_argument_group("datasets and FID")
    g.add_argument("--datasets", default="mnist,fashion_mnist", help="comma-separated datasets")
    g.add_argument("--inception-weights", default=None,
                   help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth: FID on the Inception scale")
    add_fid_flags(g)


def table_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of ``jaxwvae.reports.table1.table1``/``table2.table2`` set by :func:`add_table_flags`."""
    return {"datasets": tuple(args.datasets.split(",")), "inception_weights": args.inception_weights,
            "fid_samples": args.fid_samples, "feature_recipe": feature_recipe(args), "progress": not args.no_progress}


def given_fields(args: argparse.Namespace) -> dict:
    """The config fields the command line sets explicitly."""
    given = {k: v for k, v in vars(args).items() if k in _FIELDS}
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
    return given


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


def add_pool_flag(parser: argparse.ArgumentParser) -> None:
    """``--pool DIR`` (repeatable): folders laid out like ``--out`` whose sweeps are pooled with its cells."""
    parser.add_argument_group("seeds in batches").add_argument(
        "--pool", type=pathlib.Path, action="append", default=[], metavar="DIR",
        help="pool each cell with the same cell under DIR (a run of the same command with other --seed-list); "
             "repeatable; n is the pooled count")


def report_main(argv: Sequence[str], *, prog: str | None, description: str, stem: str,
                run: Callable[[argparse.Namespace, dict, pathlib.Path], str],
                add_flags: Sequence[Callable[[argparse.ArgumentParser], None]] = ()) -> int:
    """The skeleton of every table and study command: the common flags, ``--pool`` and ``add_flags``; the
    given config fields; ``--out`` (default ``runs/<stem>_<time>``); then ``run(args, common, out)``, whose
    markdown is printed with where it was written."""
    parser = ArgumentParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_flags(parser)
    add_pool_flag(parser)
    for add in add_flags:
        add(parser)
    args = parser.parse_args(argv)
    common = given_fields(args)
    out = args.out or default_out(config_from_args(args), stem)
    print(run(args, common, pathlib.Path(out)))
    print(f"written into {out}")
    return 0
