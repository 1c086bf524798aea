r"""The reference forecaster (``forecaster='statsmodels'``): statsmodels' ARIMA fitted on the host.

After every training step each replica's whole history of the gap
``T_1 … T_t`` is modelled by ``statsmodels.tsa.arima.model.ARIMA(history,
order=(p, d, q), trend="n")`` (exact Gaussian likelihood through the Kalman
filter) and its one-step forecast ``T̂_{t+1}`` moves λ by the paper's rule
(:func:`jaxwvae.core.lambda_rule.next_lambda`). It is the slow, trusted estimator
the fused running-sum forecaster (``forecaster='device'``) is checked against
(:func:`reference_forecasts`, ``experiments/forecast_agreement.py``).

Choices, each tested in ``tests/test_statsmodels_rule.py``:

* **Warm-up.** The forecast is the last value (``T̂_{t+1} = T_t``) until the
  replica has seen ``p + d + q + max(p, 1)`` values; for ``q = 0`` that is the
  device estimator's rule (``count − p − d >= max(p, 1)`` and ``count > d``);
  a moving-average term asks for ``q`` more values before the first fit.
* **Refits.** With ``refit_every = k`` the model is refitted on the whole
  history at the first ready step and every ``k`` ready steps after it; in
  between the last fitted results are extended by the new value with
  ``results.extend([T_t])``: the parameters stay, the Kalman filter starts from
  the state predicted at the end of the previous data and runs over the one
  new value, so a step costs O(1) in the history length and the forecast is
  still conditional on the whole history (equal to re-filtering it all with
  ``append(…, refit=False)``, which costs O(t)). ``k = 1`` fits every step.
  Fits use ``cov_type="none"`` (no parameter covariance, which λ never uses):
  the same parameters and forecasts as the default, and a little cheaper.
* **Failures.** A fit or extend that raises or gives a non-finite forecast is
  counted in :attr:`StatsmodelsRule.failed_fits`; the step then uses the
  previous results extended by the new value, or the last value when there
  are none. The refit schedule does not move.
* **Non-finite T** (a diverged replica) is left out of that replica's series:
  its forecast is NaN, its λ is returned unchanged, the others are untouched.
* T is taken at float32, the precision the sweep's history keeps, so a run
  restored from the history (:meth:`StatsmodelsRule.load_state_dict`) fits
  bit-for-bit the same numbers.

Replicas are spread over worker processes started with the ``spawn`` method
(the parent runs JAX, which must not be forked). Each worker owns a fixed
block of replicas and keeps their fitted results between steps; per step the
parent sends each worker its replicas' new values and reads back their
forecasts. Workers import numpy and statsmodels only: this module imports
nothing else at the top, and the parent's ``__main__`` script, which spawn
would import into every child, is hidden while they start (so a script that
imports JAX, or lacks a ``__main__`` guard, is fine). They are daemons, ignore
SIGINT (the parent handles Ctrl-C and closes them) and exit when the parent's
end of their pipe closes, so none outlives the parent. Each runs BLAS on one
thread (the parallelism is the workers).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import threading
import traceback
import types
import warnings
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from multiprocessing.connection import wait as _wait_ready

WORKER_NAME = "jaxwvae-statsmodels"
if multiprocessing.current_process().name.startswith(WORKER_NAME):
    # Imported by a spawned worker while it unpickles its target, before NumPy loads: parallelism is
    # across workers, so BLAS stays on one thread (OpenBLAS's own threads, 2-4x dearer fits with
    # one worker per core, are created when the library loads, from these variables).
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"

import numpy as np  # noqa: E402

# --------------------------------------------------------------------------------------
# Worker side: one replica's series and its statsmodels results.
# --------------------------------------------------------------------------------------


def warmup_values(order) -> int:
    """Values a replica must have seen before its first fit: ``p + d + q + max(p, 1)``."""
    p, d, q = (int(v) for v in order)
    return p + d + q + max(p, 1)


def _fit(values: np.ndarray, order):
    """``(results, forecast)`` of ARIMA(order) fitted to ``values``, or None if it fails."""
    from statsmodels.tsa.arima.model import ARIMA

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            results = ARIMA(values, order=order, trend="n").fit(cov_type="none")
            forecast = float(results.forecast(1)[0])
    except Exception:  # noqa: BLE001 - any failure of the fit falls back (and is counted)
        return None
    return (results, forecast) if math.isfinite(forecast) else None


def _extend(results, value: float):
    """``(results, forecast)`` of ``results`` extended by one value (same parameters), or None."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            extended = results.extend(np.array([value]))
            forecast = float(extended.forecast(1)[0])
    except Exception:  # noqa: BLE001
        return None
    return (extended, forecast) if math.isfinite(forecast) else None


class _Series:
    """One replica: its finite values so far, the current statsmodels results, failures."""

    def __init__(self, order, refit_every: int):
        self.order = tuple(int(v) for v in order)
        self.refit_every = int(refit_every)
        self.need = warmup_values(self.order)
        self.values: list[float] = []
        self.results = None
        self.failed = 0

    def update(self, value: float) -> float:
        """Add ``T_t``; return ``T̂_{t+1}`` (NaN for a non-finite value, ``T_t`` in warm-up)."""
        if not math.isfinite(value):
            return math.nan
        self.values.append(value)
        ready = len(self.values) - self.need  # index of this step among the ready ones
        if ready < 0:
            return value
        out = None
        if ready % self.refit_every == 0:
            out = _fit(np.asarray(self.values, np.float64), self.order)
            self.failed += out is None
        if out is None and self.results is not None:
            out = _extend(self.results, value)
            self.failed += out is None
        self.results = None if out is None else out[0]
        return value if out is None else out[1]

    def replay(self, values: np.ndarray) -> None:
        """Become the series that was fed ``values`` one by one, making only the calls that matter.

        The results an uninterrupted run holds now come from its last
        successful refit followed by extends through every later value (a
        failed refit falls back to extending, and a failed extend leaves no
        results until the next successful refit). So: try the scheduled refits
        from the last one backwards; the first that succeeds is that refit
        (fits are deterministic), then repeat its extends. This is the same
        sequence of fit and extend calls, so the results are bitwise the same.
        """
        self.values = [float(v) for v in values if math.isfinite(v)]
        self.results = None
        n, k = len(self.values), self.refit_every
        if n < self.need:
            return
        last_refit = self.need - 1 + ((n - self.need) // k) * k  # index into self.values
        for refit in range(last_refit, self.need - 2, -k):
            out = _fit(np.asarray(self.values[: refit + 1], np.float64), self.order)
            if out is None:
                continue
            results = out[0]
            for value in self.values[refit + 1:]:
                out = _extend(results, value)
                if out is None:
                    return
                results = out[0]
            self.results = results
            return


def _worker_main(conn, order, refit_every) -> None:
    """A worker's loop: owned series in, forecasts out, until ``close`` or the parent's end closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import statsmodels.tsa.arima.model  # noqa: F401  (sets its own warning filters on import, so first)

    warnings.simplefilter("ignore")
    owned: list[_Series] = []
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        op = message[0]
        if op == "close":
            return
        try:
            if op == "own":
                owned = [_Series(order, refit_every) for _ in range(message[1])]
                reply = ("ok",)
            elif op == "step":
                before = np.array([s.failed for s in owned], np.int64)
                forecasts = np.array([s.update(float(v)) for s, v in zip(owned, message[1])], np.float64)
                reply = ("ok", forecasts, np.array([s.failed for s in owned], np.int64) - before)
            elif op == "replay":
                for s, row in zip(owned, message[1]):
                    s.replay(row)
                reply = ("ok",)
            elif op == "series":
                s = _Series(order, refit_every)
                forecasts = np.array([s.update(float(v)) for v in message[2]], np.float64)
                reply = ("ok", message[1], forecasts, s.failed)
            elif op == "about":  # for tests: what the worker loaded, how many threads it runs
                reply = ("ok", sorted(sys.modules), len(os.listdir("/proc/self/task")) if sys.platform == "linux" else None)
            else:
                reply = ("error", f"unknown request {op!r}")
        except Exception:  # noqa: BLE001 - reported to the parent, which raises it
            reply = ("error", traceback.format_exc())
        try:
            conn.send(reply)
        except OSError:  # the parent is gone
            return


# --------------------------------------------------------------------------------------
# Parent side: the worker processes.
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


_MAIN_LOCK = threading.Lock()


@contextmanager
def _without_main_module():
    """Hide the parent's ``__main__`` from ``spawn`` while a worker starts.

    A spawned child normally re-imports the parent's main script (as
    ``__mp_main__``) before it runs its target. The workers need nothing from
    it (their target lives in this module), and importing it would load JAX
    into every worker when the script imports JAX at the top, or start workers
    recursively from a script without an ``if __name__ == "__main__"`` guard.
    So for the moment ``Process.start`` reads it, ``sys.modules["__main__"]``
    is a bare module with neither ``__file__`` nor ``__spec__``.
    """
    with _MAIN_LOCK:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is None:
                sys.modules.pop("__main__", None)
            else:
                sys.modules["__main__"] = main


class _Workers:
    """``n`` spawned worker processes, each at the end of its own pipe."""

    def __init__(self, n: int, order, refit_every: int):
        context = multiprocessing.get_context("spawn")
        self.procs, self.conns = [], []
        self._close = weakref.finalize(self, _shutdown, self.procs, self.conns)
        try:
            for i in range(n):
                parent_end, child_end = context.Pipe()
                proc = context.Process(target=_worker_main, args=(child_end, tuple(order), int(refit_every)),
                                       name=f"{WORKER_NAME}-{i}", daemon=True)
                self.conns.append(parent_end)
                with _without_main_module():
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


# --------------------------------------------------------------------------------------
# The rule the sweep calls, and the offline reference.
# --------------------------------------------------------------------------------------


class StatsmodelsRule:
    """λ by the paper's rule with statsmodels' ARIMA forecast; the sweep's ``forecaster='statsmodels'``.

    ``update(t_values, lam)`` after each step returns ``(lam_next, forecast)``
    (float32, shape ``(replicas,)``); :meth:`state_dict` /
    :meth:`load_state_dict` survive a kill; :meth:`close` (or ``with``) stops
    the workers. Uses ``config.arima_order`` and ``config.refit_every``, and the
    rule's per-replica values (c, bounds, readings) of ``config`` and its grid;
    ``workers`` defaults to ``min(replicas, cpu_count)``.
    """

    def __init__(self, config, replicas: int, *, workers: int | None = None):
        from jaxwvae.config import grid
        from jaxwvae.core import lambda_rule  # JAX, parent only: this module stays importable without it

        self._rule_step = lambda_rule.rule_step
        table = grid.replica_table(config, max(int(replicas), grid.replica_count(config)))
        self.hyper = lambda_rule.RuleHyper(*(table[f][:replicas] for f in lambda_rule.RuleHyper._fields))
        self.order = tuple(int(v) for v in config.arima_order)
        if len(self.order) != 3 or min(self.order) < 0 or sum(self.order) == 0:
            raise ValueError(f"arima_order must be (p, d, q) >= 0 with at least one non-zero, got {self.order}")
        self.refit_every = int(config.refit_every)
        if self.refit_every < 1:
            raise ValueError(f"refit_every must be >= 1, got {self.refit_every}")
        self.replicas = int(replicas)
        if self.replicas < 1:
            raise ValueError(f"replicas must be >= 1, got {replicas}")
        self.steps = 0
        self.failed_fits = np.zeros(self.replicas, np.int64)  # failed statsmodels calls per replica
        n = worker_count(workers, self.replicas)
        self._blocks = np.array_split(np.arange(self.replicas), n)
        self._workers = _Workers(n, self.order, self.refit_every)
        try:
            self._workers.gather([("own", len(block)) for block in self._blocks])
        except BaseException:
            self._workers.close()
            raise

    @property
    def workers(self) -> int:
        return len(self._workers)

    @property
    def processes(self) -> list:
        """The worker processes (``multiprocessing.Process``)."""
        return list(self._workers.procs)

    def update(self, t_values, lam):
        """Add ``T_t`` of every replica; return ``(λ_{t+1}, T̂_{t+1})`` as float32 ``(replicas,)``."""
        t = np.asarray(t_values, np.float32).reshape(-1)
        if t.shape != (self.replicas,):
            raise ValueError(f"expected {self.replicas} T values, got shape {np.shape(t_values)}")
        values = t.astype(np.float64)
        replies = self._workers.gather([("step", values[block]) for block in self._blocks])
        forecast = np.empty(self.replicas, np.float64)
        for block, (_, f, failed) in zip(self._blocks, replies):
            forecast[block] = f
            self.failed_fits[block] += failed
        self.steps += 1
        forecast = forecast.astype(np.float32)
        lam = np.broadcast_to(np.asarray(lam, np.float32), (self.replicas,))
        ok = np.isfinite(t)
        moved = self._rule_step(lam, np.where(ok, forecast, 0), np.where(ok, t, 0), self.hyper, xp=np)
        return np.where(ok, moved, lam).astype(np.float32), np.where(self.hyper.adaptive > 0, forecast, np.nan)

    def state_dict(self) -> dict:
        """Counters only (numpy arrays; fixed shapes): the series themselves live in the sweep's history."""
        return {
            "steps": np.asarray(self.steps, np.int64),
            "failed_fits": self.failed_fits.copy(),
            "order": np.asarray(self.order, np.int64),
            "refit_every": np.asarray(self.refit_every, np.int64),
        }

    def load_state_dict(self, state: dict, t_history) -> None:
        """Continue after ``state`` given every T seen so far, ``t_history`` ``(replicas, steps)``.

        Each worker replays its replicas' series (see ``_Series.replay``): the
        forecasts that follow are bitwise those of an uninterrupted run.
        """
        steps = int(np.asarray(state["steps"]))
        history = np.asarray(t_history, np.float32)
        if history.shape != (self.replicas, steps):
            raise ValueError(f"t_history has shape {history.shape}; the state is after {steps} steps "
                             f"of {self.replicas} replicas")
        for name, mine in (("order", self.order), ("refit_every", self.refit_every)):
            if name in state and np.asarray(state[name]).tolist() != np.asarray(mine).tolist():
                raise ValueError(f"the state was saved with {name}={np.asarray(state[name]).tolist()}, "
                                 f"this rule has {mine}")
        history = history.astype(np.float64)
        self._workers.gather([("replay", history[block]) for block in self._blocks])
        self.steps = steps
        self.failed_fits = np.asarray(state.get("failed_fits", np.zeros(self.replicas)), np.int64).copy()

    def close(self) -> None:
        """Stop the workers (waits for them). Calling it again does nothing."""
        self._workers.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def reference_forecasts(t_history, order, *, refit_every: int = 1, workers: int | None = None,
                        progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """statsmodels' forecast after every step, ``(replicas, steps)`` float64, for a history of T.

    Entry ``[r, t]`` is what :class:`StatsmodelsRule` (same order and
    ``refit_every``) forecasts after seeing ``T_1 … T_t`` of replica ``r`` (the
    same code; the float32 cast of its output equals it), warm-up and
    failure fallbacks included. Replicas are spread over ``workers`` processes
    (default ``min(replicas, cpu_count)``), one replica per job, so long and
    short series balance. ``progress(done, total)`` is called as replicas finish.
    Cost: one fit on a prefix of each length per replica when ``refit_every=1``
    (a fit is O(length)), so the total grows as steps². Measured on a 2-core
    x86_64 box, ARIMA(1, 1, 0): a fit takes ~7 ms of CPU at 100 values, ~15 ms
    at 1,000 and ~60 ms at 9,000, an extend ~2 ms at any length; so 30
    replicas x 9,000 steps is ~2.5 CPU-hours at ``refit_every=1`` and ~10
    CPU-minutes at ``refit_every=50`` (extrapolated from those costs).
    """
    history = np.asarray(t_history, np.float32)
    if history.ndim != 2:
        raise ValueError(f"t_history must be (replicas, steps), got shape {history.shape}")
    replicas = history.shape[0]
    out = np.full(history.shape, np.nan, np.float64)
    if replicas == 0 or history.shape[1] == 0:
        return out
    order = tuple(int(v) for v in order)
    if len(order) != 3 or min(order) < 0 or sum(order) == 0 or int(refit_every) < 1:
        raise ValueError(f"need an order (p, d, q) >= 0, not all zero, and refit_every >= 1; "
                         f"got {order}, {refit_every}")
    todo = list(range(replicas))[::-1]
    with _Workers(worker_count(workers, replicas), order, refit_every) as pool:
        busy: dict = {}  # connection -> worker index

        def give(i: int) -> None:
            r = todo.pop()
            pool.send(i, ("series", r, history[r].astype(np.float64)))
            busy[pool.conns[i]] = i

        for i in range(len(pool)):
            give(i)
        done = 0
        while busy:
            for conn in _wait_ready(list(busy)):
                i = busy.pop(conn)
                _, r, forecasts, _ = pool.recv(i)
                out[r] = forecasts
                done += 1
                if progress is not None:
                    progress(done, replicas)
                if todo:
                    give(i)
    return out


def forecast_agreement(device, reference) -> dict:
    """How often two forecasters agree on the sign of ``T̂`` (λ's direction), and how far apart they are.

    Signs compare ``f >= 0`` (sign(0) = +1, as in the λ rule). Only steps
    where both forecasts are finite count. Returns per-replica lists and
    overall numbers (NaN where no step counts).
    """
    device = np.asarray(device, np.float64)
    reference = np.asarray(reference, np.float64)
    if device.shape != reference.shape or device.ndim != 2:
        raise ValueError(f"need two (replicas, steps) arrays of one shape, got {device.shape} and {reference.shape}")
    both = np.isfinite(device) & np.isfinite(reference)
    agree = ((device >= 0) == (reference >= 0)) & both
    diff = np.abs(device - reference)

    def fraction(a, n):
        return float(a) / float(n) if n else math.nan

    def median(values):
        return float(np.median(values)) if values.size else math.nan

    counts = both.sum(axis=1)
    return {
        "steps_compared": [int(n) for n in counts],
        "sign_agreement": [fraction(a, n) for a, n in zip(agree.sum(axis=1), counts)],
        "sign_agreement_overall": fraction(agree.sum(), both.sum()),
        "median_abs_diff": [median(diff[r][both[r]]) for r in range(len(device))],
        "median_abs_diff_overall": median(diff[both]),
    }
