"""``jaxwvae sweep`` as a script: see :mod:`jaxwvae.commands.sweep` (``--help`` lists the flags)."""

import sys

from jaxwvae import commands

if __name__ == "__main__":
    sys.exit(commands.run("sweep", sys.argv[1:], "sweep.py"))
