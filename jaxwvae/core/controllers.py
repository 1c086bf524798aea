r"""Two published λ rules that steer a measured quantity, as :class:`~jaxwvae.core.lambda_rule.LambdaRule` s.

Both run per replica inside the compiled step, read the step's batch-mean metrics
(``rec``, ``kl``, ``w2``, ``t_gap``: per image, in nats) and move λ, the weight of the
objective's matching term (W2² for ELBO_W, KL for ELBO_KL, MMD for WAE-MMD). Their
constants are fields of :class:`~jaxwvae.core.lambda_rule.RuleHyper`, so a grid compares
them and PBT evolves them. λ is kept in ``[lambda_min, lambda_max]``.

``pi`` — ControlVAE (Shao et al. 2020, arXiv 2004.05988, Algorithm 1), a nonlinear PI
controller of a quantity ``y`` (KL, W2² or T: the rule's ``quantity``) toward the set point
``pi_target``::

    e_t = pi_target − y_t
    P_t = pi_kp / (1 + exp(e_t))
    I_t = I_{t−1} − pi_ki · e_t          (stopped where the output meets the bound it moves towards)
    λ_{t+1} = clip(P_t + I_t + lambda_min, lambda_min, lambda_max)

``y`` above the set point gives ``e < 0``: P grows towards ``pi_kp`` and I grows, so λ rises
and weighs the term harder. **Anti-windup** by clamping the integrator: an integration step
that raises (lowers) the integral stops where the output reaches ``lambda_max``
(``lambda_min``), and an integral already past that point is not moved further out; so after
a target that cannot be reached the
controller answers at once when the quantity comes back, instead of first unwinding an
integral that grew without bound. **Start**: the first update sets ``I`` so that the output
is λ₀ (a bumpless start), so a run begins at its configured λ.

``geco`` — GECO (Rezende & Viola 2018, arXiv 1810.00597, Algorithm 1): the constraint
``C_t = rec_t − geco_kappa`` (reconstruction at most κ nats per image), its moving average
``Ĉ_t = α Ĉ_{t−1} + (1 − α) C_t`` (``Ĉ_1 = C_1``, α = ``geco_alpha``) and dual ascent on the
Lagrange multiplier ``μ`` of ``KL + μ C``: ``μ ← μ exp(ν Ĉ)`` (ν = ``geco_step``). Dividing that
Lagrangian by μ gives ``rec + (1/μ) · matching term`` minus a constant: our objective with
``λ = 1/μ``. So ``λ ← clip(λ exp(−ν Ĉ), lambda_min, lambda_max)``: a reconstruction worse than
κ lowers λ, a better one raises it.

Each rule is written once over an array namespace ``xp`` (``jax.numpy`` in the step,
NumPy for the float64 references in the tests).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from jaxwvae.core import names
from jaxwvae.core.lambda_rule import LambdaRule, RuleHyper

QUANTITIES = names.PI_QUANTITIES  # what ``pi`` may steer: the step's metrics of these names


class PIState(NamedTuple):
    """The integral term and whether the first update (the bumpless start) has happened."""

    integral: Any
    started: Any  # bool


class GecoState(NamedTuple):
    """The moving average of the constraint and whether it has a first value."""

    c_ma: Any
    started: Any  # bool


def _clip(lam, hyper: RuleHyper, xp):
    return xp.minimum(xp.maximum(lam, hyper.lambda_min), hyper.lambda_max)


def pi_update(y, state: PIState, lam, hyper: RuleHyper, xp=jnp):
    """One step of ControlVAE's PI controller (module docstring); returns ``(lam_next, state)``."""
    dtype = xp.asarray(lam).dtype
    error = hyper.pi_target - y
    p_term = hyper.pi_kp * 0.5 * (1.0 - xp.tanh(0.5 * error))  # kp / (1 + exp(e)), never overflows
    integral = xp.where(state.started, state.integral, lam - hyper.lambda_min - p_term)  # output = λ₀ first
    step = -hyper.pi_ki * error
    # anti-windup: the integral moves at most to where the output meets the bound it moves towards
    upper = hyper.lambda_max - hyper.lambda_min - p_term  # the integral that puts the output at λ_max
    lower = -p_term  # ... at λ_min
    moved = xp.where(step > 0, xp.minimum(integral + step, xp.maximum(integral, upper)),
                     xp.maximum(integral + step, xp.minimum(integral, lower)))
    integral = xp.where(state.started, moved, integral)
    lam_next = _clip(p_term + integral + hyper.lambda_min, hyper, xp)
    return xp.asarray(lam_next, dtype), PIState(xp.asarray(integral, dtype), xp.asarray(True) | state.started)


def geco_update(rec, state: GecoState, lam, hyper: RuleHyper, xp=jnp):
    """One step of GECO's multiplier (module docstring) as λ = 1/μ; returns ``(lam_next, state)``."""
    dtype = xp.asarray(lam).dtype
    constraint = rec - hyper.geco_kappa
    c_ma = xp.where(state.started, hyper.geco_alpha * state.c_ma + (1.0 - hyper.geco_alpha) * constraint,
                    constraint)
    lam_next = _clip(lam * xp.exp(-hyper.geco_step * c_ma), hyper, xp)
    return xp.asarray(lam_next, dtype), GecoState(xp.asarray(c_ma, dtype), xp.asarray(True) | state.started)


def pi(quantity: str = "kl", xp=jnp, batch_shape=()) -> LambdaRule:
    """ControlVAE's PI controller of ``quantity`` (one of :data:`QUANTITIES`); forecast NaN."""
    if quantity not in QUANTITIES:
        raise ValueError(f"pi steers one of {QUANTITIES}, not {quantity!r}")

    def init():
        return PIState(xp.zeros(batch_shape, xp.float32), xp.zeros(batch_shape, bool))

    def update(metrics, state, lam, hyper):
        lam_next, state = pi_update(metrics[quantity], state, lam, hyper, xp=xp)
        return lam_next, state, xp.full_like(xp.asarray(lam), xp.nan)

    return LambdaRule(init, update)


def geco(xp=jnp, batch_shape=()) -> LambdaRule:
    """GECO's reconstruction constraint, its multiplier as λ; forecast NaN."""

    def init():
        return GecoState(xp.zeros(batch_shape, xp.float32), xp.zeros(batch_shape, bool))

    def update(metrics, state, lam, hyper):
        lam_next, state = geco_update(metrics["rec"], state, lam, hyper, xp=xp)
        return lam_next, state, xp.full_like(xp.asarray(lam), xp.nan)

    return LambdaRule(init, update)
