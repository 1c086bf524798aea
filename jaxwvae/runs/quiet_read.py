"""One orbax read whose failure is a one-line reason, with orbax's reports of it kept off the terminal.

Orbax reads each array in its own asyncio task, on an event loop it closes as soon as one read fails.
The other reads then report "... exception was never retrieved" to the ``asyncio`` logger and
"coroutine ... was never awaited" as a RuntimeWarning when they are collected, and tensorstore's
threads, calling back into the closed loop, report "Event loop is closed" to ``sys.unraisablehook`` (or
``sys.excepthook``), some milliseconds later; the tasks are garbage only after those call-backs.
:func:`read_quietly` drops exactly those reports while it runs and puts the hooks, the logger's filters
and the warning filters back before it returns: nothing outside the call changes, and importing this
module changes nothing at all.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import time
import warnings
from typing import Callable, TypeVar

T = TypeVar("T")
QUIET_S = 0.05  # after a failed read, its reports have stopped once this long passes without one
LIMIT_S = 2.0  # ... or after this long in all
REASON_CHARS = 160


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 3] + "..."


def _closed_loop(error) -> bool:
    return isinstance(error, RuntimeError) and str(error) == "Event loop is closed"


class _Reports(logging.Filter):
    """Drops a failed read's reports and counts them; passes everything else on to the hooks it replaced."""

    def __init__(self, excepthook, unraisablehook):
        super().__init__()
        self.excepthook, self.unraisablehook = excepthook, unraisablehook
        self.last = time.monotonic()

    def _drop(self) -> None:
        self.last = time.monotonic()

    def filter(self, record: logging.LogRecord) -> bool:  # "Task ...", "Future ...", "_GatheringFuture ..."
        if "exception was never retrieved" in record.getMessage():
            self._drop()
            return False
        return True

    def unraisable(self, unraisable) -> None:
        if _closed_loop(unraisable.exc_value):
            self._drop()
        else:
            self.unraisablehook(unraisable)

    def exception(self, kind, value, traceback) -> None:
        if _closed_loop(value):
            self._drop()
        else:
            self.excepthook(kind, value, traceback)

    def settle(self) -> None:
        """Collect the failed read's tasks until :data:`QUIET_S` passes without a report (at most :data:`LIMIT_S`)."""
        start = time.monotonic()
        while time.monotonic() - start < LIMIT_S:
            gc.collect()
            if time.monotonic() - max(self.last, start) >= QUIET_S:
                return
            time.sleep(QUIET_S / 5)


@contextlib.contextmanager
def _dropped():
    log = logging.getLogger("asyncio")
    reports = _Reports(sys.excepthook, sys.unraisablehook)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
        log.addFilter(reports)
        sys.excepthook, sys.unraisablehook = reports.exception, reports.unraisable
        try:
            yield reports
        finally:
            sys.excepthook, sys.unraisablehook = reports.excepthook, reports.unraisablehook
            log.removeFilter(reports)


def read_quietly(read: Callable[[], T]) -> tuple[T | None, str | None]:
    """``(read(), None)``, or ``(None, reason)`` if it raises: the error in one line of at most 160 characters.

    Only the reason is kept: the error's frames hold the failed reads' tasks. Before returning a
    failure it waits for their reports (:meth:`_Reports.settle`, about 0.05 s), dropping them, so that
    none comes after the call.
    """
    with _dropped() as reports:
        try:
            return read(), None
        except Exception as e:  # noqa: BLE001 - orbax and tensorstore raise many types for one bad file
            reason = _one_line(e)
        reports.settle()
    return None, reason
