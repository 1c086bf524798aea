"""The offline reference for the λ forecasters: statsmodels' forecast after every step of a saved history.

:func:`reference_forecasts` replays a run's gap ``T`` through the same series
code as the ``statsmodels`` forecaster (:mod:`jaxwvae.forecast.series`)
and :func:`forecast_agreement` compares another forecaster with it
(``experiments/forecast_agreement.py``). Imports numpy and the worker pool
only: no JAX.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from multiprocessing.connection import wait as _wait_ready

import numpy as np

from jaxwvae.forecast.pool import Workers, worker_count


def reference_forecasts(t_history, order, *, refit_every: int = 1, workers: int | None = None,
                        progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """statsmodels' forecast after every step, ``(replicas, steps)`` float64, for a history of T.

    Entry ``[r, t]`` is what :class:`jaxwvae.forecast.statsmodels_rule.StatsmodelsRule`
    (same order and ``refit_every``) forecasts after seeing ``T_1 … T_t`` of
    replica ``r`` (the same code; the float32 cast of its output equals it),
    warm-up and failure fallbacks included. Replicas are spread over
    ``workers`` processes (default ``min(replicas, cpu_count)``), one replica
    per job, so long and short series balance. ``progress(done, total)`` is
    called as replicas finish.
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
    with Workers(worker_count(workers, replicas), order, refit_every) as pool:
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
