r"""The paper's adaptive λ (section 3, Appendix C), as pure functions on array state.

After step ``t`` with batch-mean gap ``T_t`` and a forecast ``T̂_{t+1}``::

    β = 1 / (1 + exp(T̂_{t+1} − T_t)) − (1 + sign T̂_{t+1}) / 2
    λ_{t+1} = max(λ_min, λ_t + c · β)

Choices where the paper is silent, each a per-replica value in :class:`RuleHyper`
(so a grid of readings is one program), each tested:

* ``lambda_sign_zero`` (default ``+1``): the value of ``sign(0)``. The paper's prose
  puts ``T̂ = 0`` in the "λ decreases" branch ("if T_{t+1} >= 0, β = ... − 1 is
  negative"), so by default ``β < 0`` iff ``T̂ >= 0``; ``-1`` puts it in the
  increasing branch, ``0`` (NumPy's ``sign``) gives ``β = σ(T − T̂) − 1/2``.
* ``lambda_t_scale`` (default 1): the gap inside β is ``t_scale · T``. The paper's
  printed T is ``2T`` (its formula lacks the 1/2 of the Gaussian terms), so
  ``t_scale = 2`` is the rule read as printed; the sign branch is unchanged.
* ``lambda_min = 0``, ``lambda_max = +inf``: β lies in (−1, 1), so λ could cross
  zero; a negative weight would reward moving away from the prior, so λ is
  clamped at ``lambda_min``. Section 4 lets λ "vary between 0 and 20":
  ``lambda_max = 20`` reads that as a bound on the adaptive λ.
* Warm-up: the forecast is the last value (``T̂_{t+1} = T_t``, β = ±1/2) until
  the estimator has at least ``max(p, 1)`` regression pairs.

Rules follow optax's ``init``/``update`` shape: a :class:`LambdaRule` is a pair
of pure functions over a ``NamedTuple`` state of arrays, so one replica's rule
state lives inside its train state and vmaps over replicas. The ARIMA(p, d, 0)
estimator is written once over an array namespace ``xp``: with ``jax.numpy``
it runs fused in the compiled step (``forecaster='device'``), with NumPy it
runs on the host over all replicas at once (``forecaster='host'``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxwvae.core import names

LAMBDA_C = 0.05  # the paper's c (Appendix B)
LAMBDA_MIN = 0.0
LAMBDA_MAX = float("inf")


def beta(t_forecast, t_now, t_scale=1.0, sign_zero=1.0, xp=jnp):
    """β = σ(s·(T_t − T̂_{t+1})) − (1 + sign T̂_{t+1}) / 2, with ``sign(0) = sign_zero`` and ``s = t_scale``.

    With the defaults, β is negative iff ``t_forecast >= 0``.
    """
    # 1 / (1 + exp(a)) written as (1 - tanh(a / 2)) / 2, which never overflows.
    sigmoid = 0.5 * (1.0 - xp.tanh(0.5 * t_scale * (t_forecast - t_now)))
    sign = xp.where(t_forecast > 0, 1.0, xp.where(t_forecast < 0, -1.0, sign_zero))
    return sigmoid - 0.5 * (1.0 + sign)


def next_lambda(lam, t_forecast, t_now, c=LAMBDA_C, lam_min=LAMBDA_MIN, lam_max=LAMBDA_MAX, t_scale=1.0,
                sign_zero=1.0, xp=jnp):
    """λ_{t+1} = clip(λ_t + c · β(T̂_{t+1}, T_t), λ_min, λ_max), in the dtype of ``lam``."""
    lam = xp.asarray(lam)
    moved = lam + c * beta(t_forecast, t_now, t_scale, sign_zero, xp=xp)
    return xp.minimum(xp.maximum(moved, lam_min), lam_max).astype(lam.dtype)


ARIMA = names.LAMBDA_RULES.index("arima")  # the index of the paper's rule in RuleHyper.lambda_rule


class RuleHyper(NamedTuple):
    """The λ rule's per-replica hyperparameters (arrays; leading axes index replicas, as in the state).

    Each field has the name of the :class:`jaxwvae.config.SweepConfig` field it comes from.
    ``lambda_rule`` is the replica's rule as its index in :data:`jaxwvae.core.names.LAMBDA_RULES`
    (int32): λ follows the paper's rule where it is :data:`ARIMA` and stays at λ₀ where it is
    ``fixed``, so fixed and adaptive replicas share one compiled program. This is the one way a
    replica keeps λ fixed.
    """

    lambda_rule: Any
    lambda_c: Any
    lambda_min: Any
    lambda_max: Any  # +inf: unbounded
    lambda_t_scale: Any
    lambda_sign_zero: Any
    # the controllers of jaxwvae.core.controllers
    pi_target: Any
    pi_kp: Any
    pi_ki: Any
    geco_kappa: Any
    geco_alpha: Any
    geco_step: Any

    @classmethod
    def default(cls, xp=jnp, dtype=np.float32, **values):
        """The paper's Section 3 rule (adaptive, c = 0.05, λ in [0, inf), T in β, sign(0) = +1); ``values`` override."""
        base = dict(lambda_c=LAMBDA_C, lambda_min=LAMBDA_MIN, lambda_max=LAMBDA_MAX, lambda_t_scale=1.0,
                    lambda_sign_zero=1.0, pi_target=0.0, pi_kp=0.01, pi_ki=1e-4, geco_kappa=0.0,
                    geco_alpha=0.99, geco_step=1e-3)
        base.update(values)
        rule = base.pop("lambda_rule", ARIMA)
        return cls(xp.asarray(rule, np.int32), **{k: xp.asarray(v, dtype) for k, v in base.items()})

    def adapts(self, xp=jnp):
        """True where λ follows the paper's rule."""
        return xp.asarray(self.lambda_rule) == ARIMA


def rule_step(lam, t_forecast, t_now, hyper: RuleHyper, xp=jnp):
    """:func:`next_lambda` with ``hyper``'s values; λ stays where the replica's rule is ``fixed``."""
    moved = next_lambda(lam, t_forecast, t_now, hyper.lambda_c, hyper.lambda_min, hyper.lambda_max,
                        hyper.lambda_t_scale, hyper.lambda_sign_zero, xp=xp)
    return xp.where(hyper.adapts(xp), moved, xp.asarray(lam)).astype(xp.asarray(lam).dtype)


# --------------------------------------------------------------------------------------
# ARIMA(p, d, 0) by conditional least squares with running sums.
# --------------------------------------------------------------------------------------


class ArimaState(NamedTuple):
    """Running sums of the CLS fit of an AR(p) on the d-th differences of T, no constant.

    Leading axes (if any) index replicas.
    """

    count: Any  # int32 [...]: values of T seen
    tail: Any  # [..., p + d]: the last p + d values of T, oldest first (zeros before they exist)
    sxx: Any  # [..., p, p]: sum of x x^T over regression pairs
    sxy: Any  # [..., p]: sum of x y


def _diff(a, d: int, xp):
    for _ in range(d):
        a = a[..., 1:] - a[..., :-1]
    return a


def arima_init(order, batch_shape=(), dtype=np.float32, xp=jnp) -> ArimaState:
    """Empty ARIMA(p, d, 0) state (no history)."""
    p, d, _ = order
    return ArimaState(
        count=xp.zeros(batch_shape, dtype=np.int32),
        tail=xp.zeros((*batch_shape, p + d), dtype=dtype),
        sxx=xp.zeros((*batch_shape, p, p), dtype=dtype),
        sxy=xp.zeros((*batch_shape, p), dtype=dtype),
    )


def arima_coefficients(state: ArimaState, order, xp=jnp):
    """φ̂ = (Σ x xᵀ + δ I)⁻¹ Σ x y, with δ = 1e-6 · tr(Σ x xᵀ) / p (a guard for singular sums).

    p = 1 and p = 2 are solved in closed form (a division; Cramer's rule), the
    orders the paper's forecaster uses; larger p goes through ``linalg.solve``.
    """
    p = order[0]
    trace = xp.trace(state.sxx, axis1=-2, axis2=-1)[..., None, None]
    a = state.sxx + (1e-6 * trace / p + 1e-30) * xp.eye(p, dtype=state.sxx.dtype)
    b = state.sxy
    if p == 1:
        return b / a[..., 0]
    if p == 2:
        det = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
        det = xp.where(det != 0, det, 1.0)  # empty sums (warm-up): the ridge² underflows; φ̂ = 0, unused
        phi0 = (b[..., 0] * a[..., 1, 1] - a[..., 0, 1] * b[..., 1]) / det
        phi1 = (a[..., 0, 0] * b[..., 1] - a[..., 1, 0] * b[..., 0]) / det
        return xp.stack([phi0, phi1], axis=-1)
    return xp.linalg.solve(a, b[..., None])[..., 0]


def arima_update(state: ArimaState, t_value, order, xp=jnp):
    """Add ``T_t`` to the fit and forecast ``T̂_{t+1}``. O(p³ + d) per call, independent of t.

    With ``y`` the d-th differences of T, the fit regresses ``y_s`` on
    ``(y_{s-1}, …, y_{s-p})``; the forecast is ``ŷ = φ̂ · (y_t, …, y_{t-p+1})``
    undone through the differencing, e.g. ``T̂ = T_t + ŷ`` for d = 1.

    Returns:
      ``(new_state, forecast)``.
    """
    p, d, q = order
    if q != 0:
        raise ValueError(f"the running-sum estimator fits ARIMA(p, d, 0); got order {order}")
    t_value = xp.asarray(t_value, dtype=state.tail.dtype)
    ext = xp.concatenate([state.tail, t_value[..., None]], axis=-1)  # [..., p + d + 1]
    count = state.count + 1
    y = _diff(ext, d, xp)  # [..., p + 1]: y_{t-p}, …, y_t
    pairs = xp.maximum(count - p - d, 0)
    sxx, sxy = state.sxx, state.sxy
    if p > 0:
        x = y[..., :-1][..., ::-1]  # regressors of the newest y, most recent first
        new_pair = (pairs > 0)[..., None]
        sxy = sxy + xp.where(new_pair, x * y[..., -1:], 0.0)
        sxx = sxx + xp.where(new_pair[..., None], x[..., :, None] * x[..., None, :], 0.0)
    new_state = ArimaState(count, ext[..., 1:], sxx, sxy)

    if p > 0:
        phi = arima_coefficients(new_state, order, xp=xp)
        y_hat = xp.sum(phi * y[..., 1:][..., ::-1], axis=-1)
    else:
        y_hat = xp.zeros_like(t_value)
    # Undo the differencing: T̂_{t+1} = ŷ + Σ_k (−1)^{k+1} C(d, k) T_{t+1−k}.
    forecast = y_hat
    for k in range(1, d + 1):
        forecast = forecast + (-1) ** (k + 1) * math.comb(d, k) * ext[..., -k]
    ready = (pairs >= max(p, 1)) & (count > d)
    return new_state, xp.where(ready, forecast, t_value)


# --------------------------------------------------------------------------------------
# Rules: λ and its forecaster behind one init/update pair. Each rule's constructor has the
# rule's name in ``jaxwvae.core.names.LAMBDA_RULES`` (``fixed``, ``arima``).
# --------------------------------------------------------------------------------------


class LambdaRule(NamedTuple):
    """``init() -> state``; ``update(metrics, state, lam, hyper) -> (lam_next, state, t_forecast)``.

    ``metrics`` maps the step's batch-mean metrics (``t_gap``, ``kl``, ``w2``, ``rec``) to values.

    The rule compiled into the step: :func:`arima` when some replica's λ follows the paper's rule
    on the device (each replica's ``hyper.lambda_rule`` says whether its own does), :func:`fixed`
    when none does (every rule fixed, or the forecast made on the host), so that no forecaster
    runs for nothing.

    ``hyper`` is the replica's :class:`RuleHyper`; ``t_forecast`` is NaN where λ does not adapt.
    """

    init: Callable[[], Any]
    update: Callable[[Any, Any, Any, RuleHyper], tuple[Any, Any, Any]]


class NoState(NamedTuple):
    pass


def fixed() -> LambdaRule:
    """λ never moves; the forecast is NaN."""

    def update(metrics, state, lam, hyper):
        del metrics, hyper
        return lam, state, jnp.full_like(lam, jnp.nan)

    return LambdaRule(lambda: NoState(), update)


def arima(order=(1, 1, 0), xp=jnp, batch_shape=()) -> LambdaRule:
    """The paper's rule with the running-sum ARIMA(p, d, 0) forecaster.

    ``xp=jnp`` for one replica inside the compiled step; ``xp=np`` with
    ``batch_shape=(replicas,)`` for the host, where one call updates all replicas.
    """

    def init():
        return arima_init(order, batch_shape, xp=xp)

    def update(metrics, state, lam, hyper):
        t_value = metrics["t_gap"]
        state, forecast = arima_update(state, t_value, order, xp=xp)
        lam_next = rule_step(lam, forecast, t_value, hyper, xp=xp)
        return lam_next, state, xp.where(hyper.adapts(xp), forecast, xp.nan)

    return LambdaRule(init, update)


def select(rules: dict[str, LambdaRule]) -> LambdaRule:
    """One rule over replicas that use different rules: each replica follows ``rules[name]`` where its
    ``hyper.lambda_rule`` is ``name``'s index in :data:`jaxwvae.core.names.LAMBDA_RULES` (λ stays elsewhere).

    ``rules`` holds the rules some replica of the run uses (static); every one of them is stepped for
    every replica and the replica's own result kept, so replicas of different rules share one program.
    The forecast is the ARIMA rule's where a replica follows it, NaN elsewhere.
    """
    if not rules:
        return fixed()
    ordered = tuple(rules.items())

    def init():
        return tuple(rule.init() for _, rule in ordered)

    def update(metrics, states, lam, hyper):
        lam_next, forecast, new_states = lam, jnp.full_like(lam, jnp.nan), []
        for (name, rule), state in zip(ordered, states):
            lam_i, state, forecast_i = rule.update(metrics, state, lam, hyper)
            mine = hyper.lambda_rule == names.LAMBDA_RULES.index(name)
            lam_next = jnp.where(mine, lam_i, lam_next)
            forecast = jnp.where(mine, forecast_i, forecast)
            new_states.append(state)
        return lam_next, tuple(new_states), forecast

    return LambdaRule(init, update)
