"""``jaxwvae table1`` as a script: see :mod:`jaxwvae.commands.table1` (``--help`` lists the flags)."""

import sys

from jaxwvae import commands

if __name__ == "__main__":
    sys.exit(commands.run("table1", sys.argv[1:], "table1.py"))
