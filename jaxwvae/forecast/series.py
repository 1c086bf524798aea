r"""One replica's series under statsmodels' ARIMA: fit, extend, warm-up, failures, replay after a restore.

Each call models the replica's whole history ``T_1 … T_t`` with
``statsmodels.tsa.arima.model.ARIMA(history, order=(p, d, q), trend="n")``
(exact Gaussian likelihood through the Kalman filter) and returns its
one-step forecast ``T̂_{t+1}``. Choices, each tested in
``tests/test_statsmodels_rule.py``:

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
  counted in :attr:`Series.failed`; the step then uses the previous results
  extended by the new value, or the last value when there are none. The refit
  schedule does not move.
* **Non-finite T** (a diverged replica) is left out of the series: its
  forecast is NaN.

Imports numpy (and statsmodels when it fits) only: it runs inside the worker
processes of :mod:`jaxwvae.forecast.pool`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np


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


class Series:
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
