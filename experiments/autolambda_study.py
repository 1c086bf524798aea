"""``jaxwvae autolambda-study`` as a script: see :mod:`jaxwvae.commands.autolambda_study` (``--help`` lists the flags)."""

import sys

from jaxwvae import commands

if __name__ == "__main__":
    sys.exit(commands.run("autolambda-study", sys.argv[1:], "autolambda_study.py"))
