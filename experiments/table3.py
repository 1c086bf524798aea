"""``jaxwvae table3`` as a script: see :mod:`jaxwvae.commands.table3` (``--help`` lists the flags)."""

import sys

from jaxwvae import commands

if __name__ == "__main__":
    sys.exit(commands.run("table3", sys.argv[1:], "table3.py"))
