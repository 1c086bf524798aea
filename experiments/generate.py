"""``jaxwvae generate`` as a script: see :mod:`jaxwvae.commands.generate` (``--help`` lists the flags)."""

import sys

from jaxwvae import commands

if __name__ == "__main__":
    sys.exit(commands.run("generate", sys.argv[1:], "generate.py"))
