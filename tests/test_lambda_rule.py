"""The adaptive λ rule: β by hand, the running-sum ARIMA against statsmodels, host = device, resume."""

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from statsmodels.tsa.ar_model import AutoReg
from statsmodels.tsa.arima.model import ARIMA

from jaxwvae.core import lambda_rule

RNG = np.random.default_rng(7)


def sigmoid(a):
    return 1 / (1 + math.exp(-a))


# ----------------------------------------------------------------- β and the λ step
@pytest.mark.parametrize(
    "t_hat, t_now, expected",
    [
        (2.0, 1.0, 1 / (1 + math.e) - 1),  # T̂ > 0: β = sigmoid(T - T̂) - 1 < 0
        (0.5, 3.0, sigmoid(2.5) - 1),  # T̂ > 0 but below T: still negative, smaller in size
        (-2.0, -1.0, 1 / (1 + math.exp(-1))),  # T̂ < 0: β = sigmoid(T - T̂) > 0
        (-0.5, -3.0, sigmoid(-2.5)),
        (0.0, 0.0, -0.5),  # sign(0) = +1: the "λ falls" branch
        (0.0, 2.0, sigmoid(2.0) - 1),
        (1000.0, -1000.0, -1.0),  # exp(T̂ - T) would overflow; β stays finite
        (-1000.0, 1000.0, 1.0),
    ],
)
def test_beta_by_hand(t_hat, t_now, expected):
    got = float(lambda_rule.beta(jnp.float32(t_hat), jnp.float32(t_now)))
    # float32: a sigmoid of a float32 difference, a few ulps (6e-8) of |β| < 1; float64: round-off only
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(lambda_rule.beta(np.float64(t_hat), np.float64(t_now), xp=np), expected, rtol=1e-12)


def test_beta_sign_follows_the_forecast():
    t_hat = RNG.normal(scale=5, size=1000)
    t_now = RNG.normal(scale=5, size=1000)
    b = lambda_rule.beta(t_hat, t_now, xp=np)
    assert np.all((b < 0) == (t_hat >= 0))
    assert np.all(np.abs(b) < 1)


def test_next_lambda_steps_by_c_beta_and_clamps_at_zero():
    lam = np.float32(1.0)
    # float32 λ ≈ 1: a few ulps
    np.testing.assert_allclose(lambda_rule.next_lambda(lam, np.float32(-2.0), np.float32(-1.0), xp=np),
                               1.0 + 0.05 * sigmoid(1.0), rtol=1e-6)
    np.testing.assert_allclose(lambda_rule.next_lambda(lam, np.float32(2.0), np.float32(1.0), c=0.1, xp=np),
                               1.0 + 0.1 * (sigmoid(-1.0) - 1), rtol=1e-6)
    assert float(lambda_rule.next_lambda(jnp.float32(0.01), jnp.float32(5.0), jnp.float32(0.0))) == 0.0
    assert lambda_rule.next_lambda(np.float32(1.0), np.float32(1.0), np.float32(0.0), xp=np).dtype == np.float32


# ----------------------------------------------------------------- the estimator against statsmodels
def simulate_arima(phi, d, n, seed=0):
    rng = np.random.default_rng(seed)
    p = len(phi)
    y = np.zeros(n + 200)
    eps = rng.normal(size=n + 200)
    for t in range(p, n + 200):
        y[t] = sum(phi[i] * y[t - 1 - i] for i in range(p)) + eps[t]
    y = y[200:]
    for _ in range(d):
        y = np.cumsum(y)
    return y


def run_estimator(series, order, xp=np, dtype=np.float64):
    state = lambda_rule.arima_init(order, dtype=dtype, xp=xp)
    forecasts = []
    for v in series:
        state, f = lambda_rule.arima_update(state, xp.asarray(v, dtype), order, xp=xp)
        forecasts.append(float(f))
    return state, np.array(forecasts)


@pytest.mark.parametrize("order, phi", [((1, 0, 0), [0.6]), ((1, 1, 0), [-0.4]), ((2, 1, 0), [0.5, -0.3]),
                                        ((1, 2, 0), [0.3]), ((3, 0, 0), [0.2, 0.1, -0.2])])
def test_estimator_is_conditional_least_squares_like_autoreg(order, phi):
    p, d, _ = order
    series = simulate_arima(phi, d, 1500, seed=p + 10 * d)
    state, forecasts = run_estimator(series, order)
    diffs = np.diff(series, n=d) if d else series
    fit = AutoReg(diffs, lags=p, trend="n").fit()
    coef = lambda_rule.arima_coefficients(state, order, xp=np)
    np.testing.assert_allclose(coef, fit.params, rtol=1e-5)  # the 1e-6 ridge moves φ̂ by ~1e-6 relative
    # the true φ is recovered within 4 standard errors
    assert np.all(np.abs(coef - np.array(phi)) < 4 * fit.bse), (coef, phi, fit.bse)
    # one-step forecast: AutoReg's forecast of the next difference, integrated back
    next_diff = fit.forecast(1)[0]
    expected = next_diff + sum((-1) ** (k + 1) * math.comb(d, k) * series[-k] for k in range(1, d + 1))
    # float64 on both sides; the 1e-6 relative ridge moves the forecast by ~1e-6 of the series' scale
    np.testing.assert_allclose(forecasts[-1], expected, rtol=1e-6, atol=1e-6 * np.abs(series).max())


def test_every_forecast_is_the_fit_on_its_prefix():
    order = (1, 1, 0)
    series = simulate_arima([0.5], 1, 60, seed=3)
    _, forecasts = run_estimator(series, order)
    for t in (3, 4, 10, 30, 59):
        prefix = series[: t + 1]
        fit = AutoReg(np.diff(prefix), lags=1, trend="n").fit()
        # the 1e-6 relative ridge on prefixes of 4 to 60 values; 1e-5 leaves 10x
        np.testing.assert_allclose(forecasts[t], prefix[-1] + fit.forecast(1)[0], rtol=1e-5, atol=1e-5)


def test_warm_up_forecast_is_the_last_value():
    order = (1, 1, 0)
    series = [3.0, -1.0, 2.5, 4.0]
    _, forecasts = run_estimator(series, order)
    # with 1 or 2 values there is no (Δ_{t-1}, Δ_t) pair yet: T̂_{t+1} = T_t
    assert forecasts[0] == 3.0 and forecasts[1] == -1.0
    # with 3 values there is one pair: φ̂ = Δ3 Δ2 / Δ2², T̂ = T3 + φ̂ Δ3
    phi = (3.5 * -4.0) / 16.0
    np.testing.assert_allclose(forecasts[2], 2.5 + phi * 3.5, rtol=1e-5)  # the 1e-6 relative ridge


def test_random_walk_order_forecasts_the_last_value():
    series = RNG.normal(size=20).cumsum()
    _, forecasts = run_estimator(series, (0, 1, 0))
    np.testing.assert_array_equal(forecasts, series)


def test_agrees_with_statsmodels_arima_mle():
    # The rule uses only the forecast's sign and size; CLS and exact MLE agree closely on long series.
    series = simulate_arima([0.7], 1, 800, seed=5)
    state, forecasts = run_estimator(series, (1, 1, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ARIMA(series, order=(1, 1, 0), trend="n").fit()
    # CLS and exact MLE estimates differ by O(1/n) on 800 values (~1e-3); 0.02 is under one standard error of
    # φ̂ (sqrt((1 - φ²) / n) = 0.025), so an estimator of another φ fails
    np.testing.assert_allclose(lambda_rule.arima_coefficients(state, (1, 1, 0), xp=np), fit.params[:1], atol=0.02)
    step = np.std(np.diff(series))
    assert abs(forecasts[-1] - fit.forecast(1)[0]) < 0.05 * step  # the φ̂ difference times one step, with 2x room


def test_float32_device_estimator_tracks_float64_over_a_long_run():
    series = simulate_arima([0.3], 1, 9000, seed=11) * 0.1 - 5.0  # a T-like series: drifting, O(1) steps
    _, f64 = run_estimator(series, (1, 1, 0))
    rule = lambda_rule.arima((1, 1, 0))
    step = jax.jit(lambda s, t: lambda_rule.arima_update(s, t, (1, 1, 0)))
    state = rule.init()
    f32 = []
    for v in series.astype(np.float32):
        state, f = step(state, v)
        f32.append(f)
    f32 = np.array(f32)
    # float32 running sums over 9,000 steps: round-off grows to ~n·ε = 5e-4 of the series' scale
    np.testing.assert_allclose(f32, f64, atol=1e-3 * np.abs(series).max())


# ----------------------------------------------------------------- host = device, resume, independence
DEFAULT = lambda_rule.RuleHyper.default(xp=np)


def rule_trajectories(update, state, t_series, lam0, hyper=DEFAULT):
    lam, lams, forecasts = lam0, [], []
    for t in t_series:
        lams.append(np.asarray(lam))
        lam, state, f = update({"t_gap": t}, state, lam, hyper)
        forecasts.append(np.asarray(f))
    return np.array(lams), np.array(forecasts), state


def test_host_numpy_rule_equals_vmapped_device_rule():
    replicas, steps = 6, 300
    t_series = (RNG.normal(size=(steps, replicas)).cumsum(0) * 0.3).astype(np.float32)
    lam0 = RNG.uniform(0, 20, size=replicas).astype(np.float32)
    host = lambda_rule.arima((1, 1, 0), xp=np, batch_shape=(replicas,))
    lam_h, f_h, _ = rule_trajectories(host.update, host.init(), t_series, lam0)
    device = lambda_rule.arima((1, 1, 0))
    update = jax.jit(jax.vmap(device.update, in_axes=(0, 0, 0, None)))
    state = jax.vmap(lambda _: device.init())(jnp.arange(replicas))
    lam_d, f_d, _ = rule_trajectories(update, state, jnp.asarray(t_series), jnp.asarray(lam0))
    np.testing.assert_allclose(f_h, f_d, rtol=1e-4, atol=1e-4)  # float32 solves in LAPACK vs XLA
    # λ moves by c·β with c = 0.05 and |dβ/dT̂| <= 1/4: the forecasts' 1e-4 moves λ by ~1e-6 a step
    np.testing.assert_allclose(lam_h, lam_d, rtol=1e-5, atol=1e-5)


def test_state_resumes_after_a_split_history():
    series = simulate_arima([0.4, 0.2], 1, 400, seed=2).astype(np.float32)
    order = (2, 1, 0)
    full_state, full = run_estimator(series, order, xp=np, dtype=np.float32)
    first_state, first = run_estimator(series[:157], order, xp=np, dtype=np.float32)
    saved = {k: np.array(v) for k, v in first_state._asdict().items()}  # what a checkpoint keeps
    state = lambda_rule.ArimaState(**saved)
    rest = []
    for v in series[157:]:
        state, f = lambda_rule.arima_update(state, v, order, xp=np)
        rest.append(float(f))
    np.testing.assert_array_equal(np.concatenate([first, rest]), full)
    for a, b in zip(state, full_state):
        np.testing.assert_array_equal(a, b)


def test_a_replicas_lambda_depends_on_its_own_t_only():
    replicas, steps = 5, 120
    t_series = RNG.normal(size=(steps, replicas)).cumsum(0).astype(np.float32)
    changed = t_series.copy()
    changed[:, 2] = RNG.normal(size=steps) * 100  # replica 2 sees a wildly different history
    device = lambda_rule.arima((1, 1, 0))
    update = jax.jit(jax.vmap(device.update, in_axes=(0, 0, 0, None)))
    state = jax.vmap(lambda _: device.init())(jnp.arange(replicas))
    lam0 = jnp.ones(replicas)
    lam_a, _, _ = rule_trajectories(update, state, jnp.asarray(t_series), lam0)
    lam_b, _, _ = rule_trajectories(update, state, jnp.asarray(changed), lam0)
    others = [0, 1, 3, 4]
    np.testing.assert_array_equal(lam_a[:, others], lam_b[:, others])
    assert not np.allclose(lam_a[:, 2], lam_b[:, 2])


def test_fixed_rule_keeps_lambda_and_forecasts_nan():
    rule = lambda_rule.fixed()
    lam, _, forecast = rule.update({"t_gap": jnp.float32(3.0)}, rule.init(), jnp.float32(2.5), DEFAULT)
    assert float(lam) == 2.5 and np.isnan(forecast)


def test_moving_average_orders_are_refused():
    with pytest.raises(ValueError, match="ARIMA\\(p, d, 0\\)"):
        lambda_rule.arima_update(lambda_rule.arima_init((1, 1, 1), xp=np), 1.0, (1, 1, 1), xp=np)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_closed_form_coefficients_equal_a_linear_solve(p):
    # p = 1, 2 use a division and Cramer's rule; the reference is numpy's LAPACK solve in float64
    rng = np.random.default_rng(p)
    x = rng.normal(size=(7, 50, p))
    sxx = np.einsum("bni,bnj->bij", x, x)
    sxy = np.einsum("bni,bn->bi", x, rng.normal(size=(7, 50)))
    state = lambda_rule.ArimaState(np.full(7, 50), np.zeros((7, p + 1)), sxx, sxy)
    trace = np.trace(sxx, axis1=-2, axis2=-1)[:, None, None]
    expected = np.linalg.solve(sxx + (1e-6 * trace / p + 1e-30) * np.eye(p), sxy[..., None])[..., 0]
    got = lambda_rule.arima_coefficients(state, (p, 1, 0), xp=np)
    np.testing.assert_allclose(got, expected, rtol=1e-12)  # float64, well-conditioned sums
