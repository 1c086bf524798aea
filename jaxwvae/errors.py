"""The exceptions a user meets (bad input, an interrupted run) and the warning a finished run gives."""


class UserError(Exception):
    """Bad input: the message is one line that names what was wrong and the fix.

    Command-line entry points print it without a traceback and exit with
    status 2 (see ``jaxwvae.cli``).
    """


class DataError(UserError):
    """A dataset could not be found, downloaded or read."""


class ConfigError(UserError):
    """A configuration field has a value the library cannot run."""


class Interrupted(Exception):
    """A run stopped on SIGINT/SIGTERM after saving a checkpoint; the message is one line saying how to resume.

    Command-line entry points print it and exit with ``status`` (128 + the
    signal's number: 130 for SIGINT, 143 for SIGTERM), the shell's convention.
    """

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class RunWarning(UserWarning):
    """What a finished run should tell its user (posterior collapse, diverged replicas): one sentence.

    ``jaxwvae.engine.sweep.run`` warns with it; the command line prints each as a ``note:`` line.
    """
