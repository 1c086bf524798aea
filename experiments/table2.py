"""``jaxwvae table2`` as a script: see :mod:`jaxwvae.commands.table2` (``--help`` lists the flags)."""

import sys

from jaxwvae import commands

if __name__ == "__main__":
    sys.exit(commands.run("table2", sys.argv[1:], "table2.py"))
