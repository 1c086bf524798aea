"""``jaxwvae forecast-agreement`` as a script: see :mod:`jaxwvae.commands.forecast_agreement` (``--help`` lists the flags)."""

import sys

from jaxwvae import commands

if __name__ == "__main__":
    sys.exit(commands.run("forecast-agreement", sys.argv[1:], "forecast_agreement.py"))
