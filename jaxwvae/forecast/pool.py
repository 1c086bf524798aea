"""The worker processes that hold the statsmodels series (:mod:`jaxwvae.forecast.series`).

Replicas are spread over worker processes started with the ``spawn`` method
(the parent runs JAX, which must not be forked). Each worker owns a fixed
block of replicas and keeps their fitted results between steps; per step the
parent sends each worker its replicas' new values and reads back their
forecasts. Workers import numpy and statsmodels only: this module and the
series module import nothing else at the top. While a worker starts, and only
then (:func:`_starting_worker`), the parent's ``__main__`` script, which spawn
would import into every child, is hidden (so a script that imports JAX, or
lacks a ``__main__`` guard, is fine) and the BLAS thread variables are 1, so
the child runs BLAS on one thread (the parallelism is the workers); both are
restored once it has started. Importing this module changes nothing in the
process. Workers are daemons, ignore SIGINT (the parent handles Ctrl-C and
closes them) and exit when the parent's end of their pipe closes, so none
outlives the parent.

Requests a worker answers (each reply starts with ``"ok"``, or is
``("error", traceback)``): ``("own", n)`` n fresh series; ``("step", values)``
one value per owned series, answered with the forecasts and the new failures;
``("replay", rows)`` each owned series becomes the one fed its row;
``("series", key, values)`` one fresh series fed ``values`` whole, answered with
the key, every forecast and its failures; ``("close",)`` ends the worker.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import traceback
import types
import warnings
import weakref
from contextlib import contextmanager

import numpy as np

from jaxwvae.forecast.series import Series

WORKER_NAME = "jaxwvae-statsmodels"
# Read by OpenBLAS, OpenMP and MKL when the worker loads NumPy: one BLAS thread per worker (OpenBLAS's
# own threads, 2-4x dearer fits with one worker per core, are created when the library loads).
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# --------------------------------------------------------------------------------------
# Worker side.
# --------------------------------------------------------------------------------------


def _answer(owned: list[Series], message, order, refit_every) -> tuple:
    """The reply to one request (see the module docstring); ``owned`` is changed in place."""
    op = message[0]
    if op == "own":
        owned[:] = [Series(order, refit_every) for _ in range(message[1])]
        return ("ok",)
    if op == "step":
        before = np.array([s.failed for s in owned], np.int64)
        forecasts = np.array([s.update(float(v)) for s, v in zip(owned, message[1])], np.float64)
        return ("ok", forecasts, np.array([s.failed for s in owned], np.int64) - before)
    if op == "replay":
        for s, row in zip(owned, message[1]):
            s.replay(row)
        return ("ok",)
    if op == "series":
        s = Series(order, refit_every)
        forecasts = np.array([s.update(float(v)) for v in message[2]], np.float64)
        return ("ok", message[1], forecasts, s.failed)
    return ("error", f"unknown request {op!r}")


def worker_main(conn, order, refit_every) -> None:
    """A worker's loop: requests in, replies out, until ``close`` or the parent's end closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import statsmodels.tsa.arima.model  # noqa: F401  (sets its own warning filters on import, so first)

    warnings.simplefilter("ignore")
    owned: list[Series] = []
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "close":
            return
        try:
            reply = _answer(owned, message, order, refit_every)
        except Exception:  # noqa: BLE001 - reported to the parent, which raises it
            reply = ("error", traceback.format_exc())
        try:
            conn.send(reply)
        except OSError:  # the parent is gone
            return


# --------------------------------------------------------------------------------------
# Parent side.
# --------------------------------------------------------------------------------------


def worker_count(workers: int | None, replicas: int) -> int:
    """The processes used for ``replicas``: ``workers`` (default ``os.cpu_count()``), at most one per replica."""
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return max(1, min(int(workers), replicas))


def _shutdown(procs, conns) -> None:
    """Ask every worker to stop, wait a moment, then terminate what is left. Safe to repeat."""
    for conn in conns:
        try:
            conn.send(("close",))
        except (OSError, ValueError):
            pass
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
            proc.join()
    for conn in conns:
        conn.close()


_START_LOCK = threading.Lock()


@contextmanager
def _starting_worker():
    """What a worker inherits while ``Process.start`` runs: no ``__main__`` script, one BLAS thread.

    A spawned child normally re-imports the parent's main script (as
    ``__mp_main__``) before it runs its target. The workers need nothing from
    it (their target lives in this module), and importing it would load JAX
    into every worker when the script imports JAX at the top, or start workers
    recursively from a script without an ``if __name__ == "__main__"`` guard.
    So for the moment ``Process.start`` reads it, ``sys.modules["__main__"]``
    is a bare module with neither ``__file__`` nor ``__spec__``; and the child
    is started with :data:`ONE_THREAD` in its environment. Both are put back
    as they were on the way out, however ``start`` ends.
    """
    with _START_LOCK:
        main = sys.modules.get("__main__")
        saved = {name: os.environ.get(name) for name in ONE_THREAD}
        sys.modules["__main__"] = types.ModuleType("__main__")
        os.environ.update(ONE_THREAD)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            if main is None:
                sys.modules.pop("__main__", None)
            else:
                sys.modules["__main__"] = main


class Workers:
    """``n`` spawned worker processes, each at the end of its own pipe."""

    def __init__(self, n: int, order, refit_every: int):
        context = multiprocessing.get_context("spawn")
        self.procs, self.conns = [], []
        self._close = weakref.finalize(self, _shutdown, self.procs, self.conns)
        try:
            for i in range(n):
                parent_end, child_end = context.Pipe()
                proc = context.Process(target=worker_main, args=(child_end, tuple(order), int(refit_every)),
                                       name=f"{WORKER_NAME}-{i}", daemon=True)
                self.conns.append(parent_end)
                with _starting_worker():
                    proc.start()
                self.procs.append(proc)
                child_end.close()  # so a dead worker reads as EOF here
        except BaseException:
            self.close()
            raise

    def __len__(self) -> int:
        return len(self.conns)

    def send(self, i: int, message) -> None:
        self.conns[i].send(message)

    def recv(self, i: int):
        """Worker ``i``'s reply; a crashed worker or an error inside it raises RuntimeError."""
        try:
            reply = self.conns[i].recv()
        except (EOFError, OSError):
            proc = self.procs[i]
            proc.join(timeout=1)
            raise RuntimeError(f"statsmodels worker {i} ended unexpectedly (exit code {proc.exitcode})") from None
        if reply[0] == "error":
            raise RuntimeError(f"statsmodels worker {i} failed:\n{reply[1]}")
        return reply

    def gather(self, messages: list) -> list:
        """Send ``messages[i]`` to worker ``i``, then collect every reply (all of them, even after an error)."""
        for i, message in enumerate(messages):
            self.send(i, message)
        replies, error = [], None
        for i in range(len(messages)):
            try:
                replies.append(self.recv(i))
            except RuntimeError as e:
                error = error or e
                replies.append(None)
        if error is not None:
            raise error
        return replies

    def close(self) -> None:
        self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
