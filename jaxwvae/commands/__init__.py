"""The ``jaxwvae`` command: one subcommand per experiment, the same functions ``experiments/*.py`` run.

    jaxwvae sweep --preset smoke --data-dir ../shared/data     # or: python -m jaxwvae sweep ...
    jaxwvae table1 --seeds 10 --out runs/table1
    jaxwvae COMMAND --help

Each module here has ``main(argv, prog) -> int``; :func:`run` runs one by its name, for :func:`main`
and for ``experiments/*.py``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# name -> (module, one line); every module's main runs under jaxwvae.cli.run_main but forecast-agreement's,
# which trains nothing (Ctrl-C stops it at once).
COMMANDS = {
    "sweep": ("sweep", "train every seed (and grid point) of a sweep as one compiled program"),
    "table1": ("table1", "the paper's Table 1: FID of each objective"),
    "table2": ("table2", "the paper's Table 2: a CNN trained on real + reconstructed images"),
    "table3": ("table3", "the paper's Table 3: training loss at iterations 100 ... 5,000"),
    "lambda-study": ("lambda_study", "every reading of the paper's λ schedule, with FID and collapse"),
    "autolambda-study": ("autolambda_study", "the automatic λ rules (paper, pi, geco) against λ fixed, on FID"),
    "forecast-agreement": ("forecast_agreement", "how often the device forecaster's sign is statsmodels'"),
    "generate": ("generate", "prior samples and test reconstructions of a finished run, as PNGs"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: jaxwvae COMMAND [flags]   (jaxwvae COMMAND --help for its flags)", "", "commands:"]
    lines += [f"  {name:<{width}}  {line}" for name, (_, line) in COMMANDS.items()]
    return "\n".join(lines)


def run(name: str, argv: Sequence[str], prog: str) -> int:
    """Command ``name`` on ``argv``: a UserError is one line on stderr and exit status 2, never a traceback."""
    from jaxwvae import cli
    from jaxwvae.errors import UserError

    module = importlib.import_module(f"jaxwvae.commands.{COMMANDS[name][0]}")
    if name != "forecast-agreement":
        return cli.run_main(lambda args: module.main(args, prog), argv)
    try:
        return module.main(argv, prog)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """``jaxwvae COMMAND ...``: run the command; an unknown one is one line and exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)} (jaxwvae --help)",
              file=sys.stderr)
        return 2
    return run(argv[0], argv[1:], f"jaxwvae {argv[0]}")
