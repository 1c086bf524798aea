"""The pi (ControlVAE) and geco (GECO) λ rules: float64 references, toy plants, anti-windup, device = host."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxwvae.core import controllers, lambda_rule, names

RNG = np.random.default_rng(3)


def hyper(xp=np, dtype=np.float64, **values):
    return lambda_rule.RuleHyper.default(xp=xp, dtype=dtype, **values)


# ----------------------------------------------------------------- independent float64 references
def pi_reference(ys, lam0, target, kp, ki, lo, hi):
    """ControlVAE's Algorithm 1 in plain Python floats, with the integrator clamped at the output's bounds."""
    lams, integral = [], None
    lam = lam0
    for y in ys:
        e = target - y
        p = kp / (1.0 + math.exp(e)) if e < 700 else 0.0
        if integral is None:  # the bumpless start: the first output is λ₀
            integral = lam - lo - p
        else:
            step = -ki * e
            if step > 0:  # rising: at most to the integral whose output is hi (never back down)
                integral = min(integral + step, max(integral, hi - lo - p))
            else:  # falling: at most to the integral whose output is lo
                integral = max(integral + step, min(integral, -p))
        lam = min(max(p + integral + lo, lo), hi)
        lams.append(lam)
    return np.array(lams)


def geco_reference(recs, lam0, kappa, alpha, nu, lo, hi):
    """GECO's multiplier μ ← μ·exp(ν Ĉ) on the moving average Ĉ, returned as λ = 1/μ, clipped."""
    lams, c_ma, lam = [], None, lam0
    for rec in recs:
        c = rec - kappa
        c_ma = c if c_ma is None else alpha * c_ma + (1 - alpha) * c
        mu = 1.0 / lam
        mu *= math.exp(nu * c_ma)
        lam = min(max(1.0 / mu, lo), hi)
        lams.append(lam)
    return np.array(lams)


def run(rule, metrics_series, lam0, h):
    state, lam, out = rule.init(), lam0, []
    for metrics in metrics_series:
        lam, state, forecast = rule.update(metrics, state, lam, h)
        assert np.all(np.isnan(np.asarray(forecast)))  # the controllers forecast nothing
        out.append(np.asarray(lam))
    return np.array(out), state


@pytest.mark.parametrize("lo, hi", [(0.0, math.inf), (0.2, 3.0)])
def test_pi_equals_its_float64_reference(lo, hi):
    ys = 25 + RNG.normal(scale=8, size=400).cumsum() * 0.3
    h = hyper(lambda_rule=names.LAMBDA_RULES.index("pi"), pi_target=20.0, pi_kp=0.5, pi_ki=0.01,
              lambda_min=lo, lambda_max=hi)
    got, _ = run(controllers.pi("kl", xp=np), [{"kl": np.float64(y)} for y in ys], np.float64(1.0), h)
    np.testing.assert_allclose(got, pi_reference(ys, 1.0, 20.0, 0.5, 0.01, lo, hi), rtol=1e-12, atol=1e-12)
    if hi < math.inf:
        assert got.min() >= lo and got.max() <= hi and np.any(got == hi)  # the bounds are reached and held


def test_geco_equals_its_float64_reference():
    recs = 95 + RNG.normal(scale=5, size=400)
    h = hyper(lambda_rule=names.LAMBDA_RULES.index("geco"), geco_kappa=92.0, geco_alpha=0.9, geco_step=0.01,
              lambda_min=0.0, lambda_max=50.0)
    got, _ = run(controllers.geco(xp=np), [{"rec": np.float64(r)} for r in recs], np.float64(2.0), h)
    np.testing.assert_allclose(got, geco_reference(recs, 2.0, 92.0, 0.9, 0.01, 0.0, 50.0), rtol=1e-12)


def test_the_first_pi_step_keeps_lambda_zero():
    rule = controllers.pi("w2", xp=np)
    h = hyper(pi_target=10.0, pi_kp=1.0, pi_ki=0.1)
    lam, _, _ = rule.update({"w2": np.float64(40.0)}, rule.init(), np.float64(3.5), h)
    assert lam == pytest.approx(3.5, abs=1e-12)


# ----------------------------------------------------------------- toy plants whose target is reachable
def test_pi_drives_a_plant_to_its_set_point_and_stays():
    # the plant: KL falls as its weight rises, KL(λ) = 40 / (1 + λ), plus noise; KL = 20 at λ = 1
    rule, rng = jax.jit(controllers.pi("kl").update), np.random.default_rng(0)
    h = hyper(xp=jnp, dtype=np.float32, pi_target=20.0, pi_kp=0.05, pi_ki=0.005, lambda_min=0.0, lambda_max=10.0)
    state, lam, kls = controllers.pi("kl").init(), jnp.float32(4.0), []
    for _ in range(3000):
        kl = 40.0 / (1.0 + float(lam)) + rng.normal(scale=0.5)
        lam, state, _ = rule({"kl": jnp.float32(kl)}, state, lam, h)
        kls.append(kl)
    last = np.array(kls[-1000:])
    # the noise's sd is 0.5: the mean of 1,000 readings sits within 0.1 of the set point when it is held
    assert abs(last.mean() - 20.0) < 0.1 and abs(float(lam) - 1.0) < 0.1


def test_geco_drives_the_reconstruction_to_its_bound_and_stays():
    # the plant: reconstruction rises with the weight of the matching term, rec(λ) = 80 + 10 λ; rec = 95 at 1.5
    rule, rng = jax.jit(controllers.geco().update), np.random.default_rng(1)
    h = hyper(xp=jnp, dtype=np.float32, geco_kappa=95.0, geco_alpha=0.99, geco_step=1e-3, lambda_max=20.0)
    state, lam, recs = controllers.geco().init(), jnp.float32(5.0), []
    for _ in range(6000):
        rec = 80.0 + 10.0 * float(lam) + rng.normal(scale=1.0)
        lam, state, _ = rule({"rec": jnp.float32(rec)}, state, lam, h)
        recs.append(rec)
    assert abs(np.mean(recs[-2000:]) - 95.0) < 0.2 and abs(float(lam) - 1.5) < 0.05


def test_anti_windup_holds_the_integral_while_saturated():
    rule = controllers.pi("kl", xp=np)
    h = hyper(pi_target=10.0, pi_kp=0.1, pi_ki=0.01, lambda_min=0.0, lambda_max=2.0)
    state, lam = rule.init(), np.float64(1.0)
    for _ in range(2000):  # KL far above a target it cannot reach: λ saturates at λ_max
        lam, state, _ = rule.update({"kl": np.float64(50.0)}, state, lam, h)
    assert lam == 2.0
    # the integral stopped where the output met λ_max: at most λ_max − λ_min (P >= 0)
    assert state.integral <= 2.0
    for steps in range(1, 100):  # the target becomes reachable: λ leaves the bound at once
        lam, state, _ = rule.update({"kl": np.float64(0.0)}, state, lam, h)
        if lam < 2.0:
            break
    assert steps <= 2  # without anti-windup the integral (~0.4 · 2000 = 800) would take ~8,000 steps to unwind


# ----------------------------------------------------------------- device = host, one program for every rule
def test_vmapped_device_rules_equal_the_host_numpy_rules():
    replicas, steps = 4, 200
    kl = (20 + RNG.normal(size=(steps, replicas)).cumsum(0)).astype(np.float32)
    rec = (90 + RNG.normal(size=(steps, replicas)) * 3).astype(np.float32)
    lam0 = RNG.uniform(0.5, 2, size=replicas).astype(np.float32)
    h_np = lambda_rule.RuleHyper.default(xp=np, pi_target=np.float32(18.0), pi_kp=0.1, pi_ki=0.01,
                                         geco_kappa=88.0, geco_alpha=0.9, geco_step=0.01, lambda_max=5.0)
    for make in (lambda xp, b: controllers.pi("kl", xp=xp, batch_shape=b),
                 lambda xp, b: controllers.geco(xp=xp, batch_shape=b)):
        host = make(np, (replicas,))
        device = make(jnp, ())
        update = jax.jit(jax.vmap(device.update, in_axes=(0, 0, 0, None)))
        series = [{"kl": kl[t], "rec": rec[t]} for t in range(steps)]
        lam_h, _ = run(host, series, lam0, h_np)
        state, lam, lam_d = jax.vmap(lambda _: device.init())(jnp.arange(replicas)), jnp.asarray(lam0), []
        h_j = jax.tree_util.tree_map(jnp.asarray, h_np)
        for m in series:
            lam, state, _ = update({k: jnp.asarray(v) for k, v in m.items()}, state, lam, h_j)
            lam_d.append(np.asarray(lam))
        # float32 on both sides; XLA and NumPy round exp/tanh differently by an ulp or two
        np.testing.assert_allclose(lam_h, np.array(lam_d), rtol=1e-5, atol=1e-6)


def test_select_runs_each_replica_by_its_own_rule():
    rules = {"arima": lambda_rule.arima((1, 1, 0)), "pi": controllers.pi("kl"), "geco": controllers.geco()}
    combined = lambda_rule.select(rules)
    indices = [names.LAMBDA_RULES.index(n) for n in ("fixed", "arima", "pi", "geco")]
    base = lambda_rule.RuleHyper.default(xp=np, pi_target=20.0, geco_kappa=90.0)
    h = jax.tree_util.tree_map(lambda v: jnp.stack([jnp.asarray(v)] * 4), base)._replace(
        lambda_rule=jnp.asarray(indices, jnp.int32))
    update = jax.jit(jax.vmap(combined.update, in_axes=(0, 0, 0, 0)))
    state = jax.vmap(lambda _: combined.init())(jnp.arange(4))
    lam = jnp.ones(4)
    alone = {n: (r.init(), jnp.float32(1.0)) for n, r in rules.items()}
    for t in range(50):
        m = {"t_gap": jnp.full(4, -50.0 + t), "kl": jnp.full(4, 25.0 + 0.1 * t), "rec": jnp.full(4, 95.0 - 0.1 * t),
             "w2": jnp.full(4, 10.0)}
        lam, state, forecast = update(m, state, lam, h)
        for i, n in enumerate(("arima", "pi", "geco"), start=1):
            s, l_ = alone[n]
            hi = jax.tree_util.tree_map(lambda v: v[i], h)
            l_, s, f = rules[n].update({k: v[0] for k, v in m.items()}, s, l_, hi)
            alone[n] = (s, l_)
            np.testing.assert_allclose(lam[i], l_, rtol=1e-6)  # the same float32 ops, maybe fused differently
        assert float(lam[0]) == 1.0 and np.isnan(forecast[0]) and np.isnan(forecast[2])
        assert np.isfinite(forecast[1])
