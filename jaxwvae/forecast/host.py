"""Where λ moves, decided once (:func:`host_lambda`), and the rules that move it on the host, behind one interface.

With ``forecaster='device'`` the adaptive rule is fused into the compiled step
(:func:`jaxwvae.engine.program.device_rule`) and there is no host rule. Otherwise
λ moves on the host: the run's plan takes one step per call
(``Plan.host_lambda``), the training loop reads ``T_t`` and ``λ_t`` of every
replica after each call and asks a :class:`HostRule` for ``λ_{t+1}``:
:class:`HostArima` (the device estimator, run by NumPy) or
:class:`jaxwvae.forecast.statsmodels_rule.StatsmodelsRule`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from jaxwvae.config import SweepConfig, grid
from jaxwvae.core import lambda_rule
from jaxwvae.forecast.statsmodels_rule import StatsmodelsRule


def adaptive(config: SweepConfig) -> bool:
    """Whether any grid point moves λ with the adaptive rule."""
    return any(c.lambda_rule == "arima" for c in grid.resolved_points(config))


def host_lambda(config: SweepConfig) -> bool:
    """Whether λ moves on the host: some grid point is adaptive and the forecaster is not ``device``.

    The one place this is decided: :func:`jaxwvae.engine.plan.make_plan` keeps it
    as ``Plan.host_lambda``, which the plan's step count, the compiled step's
    rule, the sweep's :func:`host_rule` and the training loop read.
    """
    return config.forecaster != "device" and adaptive(config)


@runtime_checkable
class HostRule(Protocol):
    """What the training loop (:func:`jaxwvae.engine.loop.train_loop`) asks of a host-side λ rule."""

    def update(self, t_values: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Take ``T_t`` and ``λ_t`` of every replica; return ``(λ_{t+1}, T̂_{t+1})``, shape ``(replicas,)``."""
        ...

    def state_dict(self) -> dict:
        """NumPy arrays of fixed shapes, saved in every checkpoint."""
        ...

    def load_state_dict(self, state: dict, t_history: np.ndarray) -> None:
        """Continue from a checkpoint's ``state``, given every ``T`` so far, ``(replicas, steps)``."""
        ...

    def close(self) -> None:
        """Release what the rule holds (processes); called once the training loop ends, however it ends."""
        ...


def host_hyper(config: SweepConfig, replicas: int) -> lambda_rule.RuleHyper:
    """The λ rule's per-replica hyperparameters as NumPy arrays, for the host forecasters."""
    table = grid.replica_table(config, replicas)
    return lambda_rule.RuleHyper(*(table[f] for f in lambda_rule.RuleHyper._fields))


class HostArima:
    """``forecaster='host'``: the device estimator run by NumPy over all replicas after each step."""

    def __init__(self, config: SweepConfig, replicas: int):
        self.rule = lambda_rule.arima(config.arima_order, xp=np, batch_shape=(replicas,))
        self.hyper = host_hyper(config, replicas)
        self.state = self.rule.init()

    def update(self, t_values, lam):
        lam_next, self.state, forecast = self.rule.update({"t_gap": t_values}, self.state, lam, self.hyper)
        return lam_next, forecast

    def state_dict(self) -> dict:
        return self.state._asdict()

    def load_state_dict(self, state: dict, t_history: np.ndarray) -> None:
        del t_history  # the estimator's state holds what it needs
        self.state = lambda_rule.ArimaState(**{k: np.asarray(v) for k, v in state.items()})

    def close(self) -> None:
        pass


def host_rule(config: SweepConfig, replicas: int) -> HostRule:
    """The host-side λ rule of a config whose λ moves on the host (:func:`host_lambda`)."""
    if not host_lambda(config):
        raise ValueError(f"λ moves on the device or not at all (forecaster {config.forecaster!r}, "
                         f"no adaptive point, or both): there is no host rule")
    if config.forecaster == "host":
        return HostArima(config, replicas)
    return StatsmodelsRule(config, replicas)
