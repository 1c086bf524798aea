"""The one exception type for bad input from a user."""


class UserError(Exception):
    """Bad input: the message is one line that names what was wrong and the fix.

    Command-line entry points print it without a traceback and exit with
    status 2 (see ``jaxwvae.cli``).
    """


class DataError(UserError):
    """A dataset could not be found, downloaded or read."""


class ConfigError(UserError):
    """A configuration field has a value the library cannot run."""
