"""``jaxwvae lambda-study`` as a script: see :mod:`jaxwvae.commands.lambda_study` (``--help`` lists the flags)."""

import sys

from jaxwvae import commands

if __name__ == "__main__":
    sys.exit(commands.run("lambda-study", sys.argv[1:], "lambda_study.py"))
