"""Stop a run cleanly on SIGTERM or SIGINT (a preempted cloud machine, Ctrl-C).

The command-line entry points hold :func:`handled` around their work (see
``jaxwvae.cli.run_main``); nothing else installs a handler, so a library
caller keeps Python's own behaviour. The first SIGTERM or SIGINT only records
the signal: the sweep's training loop (``engine.loop.train_loop``) reads :func:`requested`
after each compiled chunk, records the history, saves a checkpoint, waits for
it and raises ``errors.Interrupted``, which the entry point prints as one line
and turns into exit status 128 + the signal number (130, 143).

A second signal ends the process at once: the first one restores the
system's default action for both signals, because a Python handler would only
run once the compiled call in flight returns. That loses nothing already
written: every output file is written to a temporary name and renamed, and
orbax renames a checkpoint's folder only once it is complete.

Several processes: each reads its own flag; :func:`agreed` takes the
largest over all processes after every chunk, so all stop at the same chunk
(a pod preemption signals every process anyway).
"""

from __future__ import annotations

import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: int | None = None


def requested() -> int | None:
    """The signal received since :func:`handled` was entered (None if none, or if no handler is installed)."""
    return _received


def _handle(signum, frame) -> None:
    del frame
    global _received
    if _received is None:
        _received = signum
    for s in SIGNALS:  # the next one ends the process at once
        signal.signal(s, signal.SIG_DFL)


@contextlib.contextmanager
def handled():
    """While inside, SIGINT/SIGTERM ask the run to stop at its next chunk; the old handlers return on exit.

    Outside the main thread (where Python cannot set handlers) this does nothing.
    """
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    _received = None
    for s in SIGNALS:
        signal.signal(s, _handle)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        _received = None


def agreed(signum: int | None) -> int | None:
    """``signum`` in one process; with several, the largest signal any process received (0 = none)."""
    import jax

    if jax.process_count() == 1:
        return signum
    import numpy as np
    from jax.experimental import multihost_utils

    gathered = multihost_utils.process_allgather(np.int32(signum or 0))
    return int(np.max(gathered)) or None


def name(signum: int) -> str:
    return signal.Signals(signum).name
