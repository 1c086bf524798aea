"""``python -m jaxwvae COMMAND ...``: the ``jaxwvae`` command (:mod:`jaxwvae.commands`)."""

import sys

from jaxwvae.commands import main

if __name__ == "__main__":
    sys.exit(main())
