r"""The reference forecaster (``forecaster='statsmodels'``): statsmodels' ARIMA fitted on the host.

After every training step each replica's whole history of the gap
``T_1 … T_t`` is modelled by statsmodels' ARIMA(p, d, q) and its one-step
forecast ``T̂_{t+1}`` moves λ by the paper's rule
(:func:`jaxwvae.core.lambda_rule.next_lambda`). It is the slow, trusted estimator
the fused running-sum forecaster (``forecaster='device'``) is checked against
(:mod:`jaxwvae.forecast.reference`, ``experiments/forecast_agreement.py``).

The series and their choices (warm-up, refits, failures) are in
:mod:`jaxwvae.forecast.series`, the worker processes that hold them in
:mod:`jaxwvae.forecast.pool`. Here, each tested in
``tests/test_statsmodels_rule.py``:

* **Non-finite T** (a diverged replica) is left out of that replica's series:
  its forecast is NaN, its λ is returned unchanged, the others are untouched.
* T is taken at float32, the precision the sweep's history keeps, so a run
  restored from the history (:meth:`StatsmodelsRule.load_state_dict`) fits
  bit-for-bit the same numbers.

Importable without JAX (the rule loads ``jaxwvae.core.lambda_rule`` when it is
built), as are the series, the pool and the reference.
"""

from __future__ import annotations

import numpy as np

from jaxwvae.forecast.pool import Workers, worker_count


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
        self._workers = Workers(n, self.order, self.refit_every)
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
        return np.where(ok, moved, lam).astype(np.float32), np.where(self.hyper.adapts(np), forecast, np.nan)

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

        Each worker replays its replicas' series (see :meth:`jaxwvae.forecast.series.Series.replay`): the
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
