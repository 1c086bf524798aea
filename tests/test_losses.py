"""jaxwvae.losses against independent float64 references (scipy, numpy, quadrature, Monte Carlo)."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.special
import scipy.stats
from jax.test_util import check_grads

from jaxwvae import losses

RNG = np.random.default_rng(20210930)
M = 20  # the paper's latent size


def random_gaussian(shape=(M,), logvar_scale=2.0):
    mu = RNG.normal(size=shape)
    logvar = RNG.normal(scale=logvar_scale, size=shape)
    return mu, logvar


def f32(*arrays):
    return [jnp.asarray(a, jnp.float32) for a in arrays]


# ----------------------------------------------------------------- float64 references
def w2_general_reference(mu_p, cov_p, mu_q, cov_q):
    """Givens & Shortt (1984): |mu_p - mu_q|^2 + tr(S_p + S_q - 2 (S_q^1/2 S_p S_q^1/2)^1/2), via scipy.sqrtm."""
    root_q = scipy.linalg.sqrtm(cov_q)
    cross = scipy.linalg.sqrtm(root_q @ cov_p @ root_q)
    return float(np.sum((mu_p - mu_q) ** 2) + np.trace(cov_p + cov_q - 2 * np.real(cross)))


def kl_quadrature_reference(mu, logvar):
    """Sum over latents of the 1-D integral of q log(q / p), by scipy.integrate.quad."""
    total = 0.0
    for m, lv in zip(mu, logvar):
        s = np.exp(lv / 2)
        q = scipy.stats.norm(m, s)
        integrand = lambda z: q.pdf(z) * (q.logpdf(z) - scipy.stats.norm.logpdf(z))  # noqa: E731
        val, _ = scipy.integrate.quad(integrand, m - 40 * s, m + 40 * s, limit=400, points=[m])
        total += val
    return total


def w2_quantile_reference(mu, logvar):
    """Per latent, W2^2 in 1-D is the integral over u of (F_q^{-1}(u) - F_p^{-1}(u))^2 (quadrature)."""
    total = 0.0
    for m, lv in zip(mu, logvar):
        s = np.exp(lv / 2)
        integrand = lambda u: (m + (s - 1) * scipy.stats.norm.ppf(u)) ** 2  # noqa: E731
        val, _ = scipy.integrate.quad(integrand, 0, 1, limit=400)
        total += val
    return total


# ----------------------------------------------------------------- values at random inputs
def test_w2_squared_matches_general_gaussian_formula():
    for _ in range(5):
        mu, logvar = random_gaussian()
        ref = w2_general_reference(mu, np.diag(np.exp(logvar)), np.zeros(M), np.eye(M))
        got = losses.w2_squared(*f32(mu, logvar))
        np.testing.assert_allclose(got, ref, rtol=2e-6)  # float32 sum of 20 terms


def test_w2_squared_matches_quantile_quadrature():
    mu, logvar = random_gaussian((5,), logvar_scale=1.0)
    # quad of an integrand unbounded at u = 0 and 1 (the normal quantile): ~1e-7 relative, as float32's sum
    np.testing.assert_allclose(losses.w2_squared(*f32(mu, logvar)), w2_quantile_reference(mu, logvar), rtol=1e-5)


def test_w2_squared_diag_matches_general_gaussian_formula():
    for _ in range(5):
        mu_p, lv_p = random_gaussian()
        mu_q, lv_q = random_gaussian()
        ref = w2_general_reference(mu_p, np.diag(np.exp(lv_p)), mu_q, np.diag(np.exp(lv_q)))
        got = losses.w2_squared_diag(*f32(mu_p, lv_p, mu_q, lv_q))
        np.testing.assert_allclose(got, ref, rtol=5e-6)  # float32 sum of 20 terms, each of two σ's and an expm1


def test_w2_squared_diag_reduces_to_w2_squared_against_standard_normal():
    mu, logvar = f32(*random_gaussian((4, M)))
    zeros = jnp.zeros_like(mu)
    np.testing.assert_allclose(losses.w2_squared_diag(mu, logvar, zeros, zeros), losses.w2_squared(mu, logvar),
                               rtol=1e-6)  # the same float32 terms by two expressions: a few ulps


def test_kl_matches_quadrature():
    mu, logvar = random_gaussian((6,), logvar_scale=1.0)
    np.testing.assert_allclose(losses.kl_divergence(*f32(mu, logvar)), kl_quadrature_reference(mu, logvar),
                               rtol=1e-5)  # quad ~1e-8, float32 round-off ~1e-7 of the sum


def test_kl_matches_monte_carlo():
    mu, logvar = random_gaussian((M,), logvar_scale=0.5)
    sigma = np.exp(logvar / 2)
    z = mu + sigma * RNG.normal(size=(400_000, M))
    log_ratio = scipy.stats.norm.logpdf(z, mu, sigma).sum(-1) - scipy.stats.norm.logpdf(z).sum(-1)
    se = log_ratio.std() / np.sqrt(len(log_ratio))
    got = float(losses.kl_divergence(*f32(mu, logvar)))
    # Monte Carlo mean of 400,000 draws: 4 standard errors (a correct KL fails once in ~16,000 seeds)
    assert abs(got - log_ratio.mean()) < 4 * se, (got, log_ratio.mean(), se)


def test_t_gap_is_w2_minus_kl_and_half_the_papers_printed_value():
    for _ in range(5):
        mu, logvar = random_gaussian()
        sigma = np.exp(logvar / 2)
        w2 = np.sum(mu**2) + np.sum((sigma - 1) ** 2)
        kl = 0.5 * np.sum(mu**2 + sigma**2 - 1 - logvar)
        papers_2t = np.sum(logvar) + np.sum((sigma - 2) ** 2) + np.sum(mu**2) - M  # as printed in section 3
        got = float(losses.t_gap(*f32(mu, logvar)))
        # float32 sum of 20 per-latent terms of either sign, each up to ~10: round-off ~1e-6 of their size
        np.testing.assert_allclose(got, w2 - kl, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got, papers_2t / 2, rtol=1e-5, atol=1e-5)


def test_bernoulli_nll_matches_scipy():
    logits = RNG.normal(scale=4.0, size=(3, 784))
    x = RNG.uniform(size=(3, 784))
    p = scipy.special.expit(logits)
    ref = -np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=-1)
    np.testing.assert_allclose(losses.bernoulli_nll(*f32(logits, x)), ref, rtol=1e-5)  # float32 sum of 784 terms


def test_squared_error_matches_numpy():
    y, x = RNG.uniform(size=(2, 3, 784))
    np.testing.assert_allclose(losses.squared_error(*f32(y, x)), np.sum((y - x) ** 2, -1),
                               rtol=1e-5)  # float32 sum of 784 terms


# ----------------------------------------------------------------- named edge cases
def test_standard_normal_gives_exact_zero():
    zeros = jnp.zeros(M)
    for fn in (losses.w2_squared, losses.kl_divergence, losses.t_gap):
        assert float(fn(zeros, zeros)) == 0.0


@pytest.mark.parametrize("lv", [1e-6, -1e-4, 1e-4, 0.1, -0.4999, 0.5001, -0.9999, 1.0001, -1.5, 3.0])
def test_sigma_near_one_is_accurate(lv):
    # Near sigma = 1 each latent's KL is ~ logvar^2 / 4 and its T ~ logvar^3 / 24: differences of much
    # larger terms, which float32 would lose. lv spans both sides of the series switches (|logvar| = 0.5
    # for KL, 1 for T). The reference is mpmath at 50 digits on the float32-rounded input.
    lv32 = float(np.float32(lv))
    with mpmath.workdps(50):
        x = mpmath.mpf(lv32)
        w2 = 4 * mpmath.expm1(x / 2) ** 2
        kl = 2 * (mpmath.expm1(x) - x)
        t = w2 - kl
    mu, logvar = f32(np.zeros(4), np.full(4, lv32))
    # float32 results: a few ulps (eps = 6e-8) on top of the rounding of each term.
    np.testing.assert_allclose(losses.w2_squared(mu, logvar), float(w2), rtol=2e-6)
    np.testing.assert_allclose(losses.kl_divergence(mu, logvar), float(kl), rtol=2e-6)
    np.testing.assert_allclose(losses.t_gap(mu, logvar), float(t), rtol=5e-6)


@pytest.mark.parametrize("name", ["w2_squared", "kl_divergence", "t_gap"])
def test_sigma_to_zero_gives_finite_values_and_gradients(name):
    fn = getattr(losses, name)
    mu = jnp.zeros(M)
    logvar = jnp.full(M, -30.0)
    value = fn(mu, logvar)
    grads = jax.grad(lambda m, lv: fn(m, lv), argnums=(0, 1))(mu, logvar)
    assert np.isfinite(value)
    assert all(np.all(np.isfinite(g)) for g in grads)
    ref = {"w2_squared": M * (np.exp(-15.0) - 1) ** 2,
           "kl_divergence": 0.5 * M * (np.exp(-30.0) - 1 + 30.0),
           "t_gap": M * ((np.exp(-15.0) - 1) ** 2 - 0.5 * (np.exp(-30.0) - 1 + 30.0))}[name]
    np.testing.assert_allclose(value, ref, rtol=1e-6)  # float32: 20 equal terms of ~15, a few ulps


@pytest.mark.parametrize("name", ["w2_squared", "kl_divergence", "t_gap"])
def test_huge_mean_gives_finite_values_and_gradients(name):
    # |mu| = 1e15: mu^2 = 1e30 summed over 20 latents stays below float32's 3.4e38.
    fn = getattr(losses, name)
    mu = jnp.full(M, -1e15)
    logvar = jnp.zeros(M)
    value = fn(mu, logvar)
    grads = jax.grad(lambda m, lv: fn(m, lv), argnums=(0, 1))(mu, logvar)
    assert np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads)
    expected = {"w2_squared": M * 1e30, "kl_divergence": 0.5 * M * 1e30, "t_gap": 0.5 * M * 1e30}[name]
    np.testing.assert_allclose(value, expected, rtol=1e-6)  # float32: 1e15 and its square are rounded (6e-8 each)


def test_bernoulli_nll_stays_finite_at_extreme_logits():
    logits = jnp.array([-1e4, -80.0, 0.0, 80.0, 1e4])
    x = jnp.array([1.0, 1.0, 0.5, 0.0, 0.0])
    value = losses.bernoulli_nll(logits, x)
    grad = jax.grad(lambda l: losses.bernoulli_nll(l, x))(logits)
    np.testing.assert_allclose(value, 1e4 + 80.0 + np.log(2) + 80.0 + 1e4, rtol=1e-6)  # float32 sum ~2e4: ulps
    assert np.all(np.isfinite(grad))


# ----------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", ["w2_squared", "kl_divergence", "t_gap"])
def test_gradients_match_finite_differences(name):
    fn = getattr(losses, name)
    with jax.enable_x64(True):
        mu, logvar = (jnp.asarray(a, jnp.float64) for a in random_gaussian((3, 5), logvar_scale=1.0))
        check_grads(fn, (mu, logvar), order=2, modes=("fwd", "rev"))


def test_w2_diag_and_bernoulli_gradients_match_finite_differences():
    with jax.enable_x64(True):
        args = [jnp.asarray(a, jnp.float64) for a in (*random_gaussian((2, 4)), *random_gaussian((2, 4)))]
        check_grads(losses.w2_squared_diag, args, order=2, modes=("fwd", "rev"))
        logits = jnp.asarray(RNG.normal(size=(2, 7)) * 3, jnp.float64)
        x = jnp.asarray(RNG.uniform(size=(2, 7)), jnp.float64)
        check_grads(losses.bernoulli_nll, (logits, x), order=2, modes=("fwd", "rev"))


def test_w2_gradient_is_analytic():
    mu, logvar = f32(*random_gaussian((M,), logvar_scale=1.0))
    g_mu, g_lv = jax.grad(losses.w2_squared, argnums=(0, 1))(mu, logvar)
    sigma = np.exp(np.asarray(logvar) / 2)
    np.testing.assert_allclose(g_mu, 2 * np.asarray(mu), rtol=1e-6)  # 2μ: exact but for one float32 rounding
    np.testing.assert_allclose(g_lv, (sigma - 1) * sigma, rtol=1e-5, atol=1e-7)  # d/dlv (sigma-1)^2


# ----------------------------------------------------------------- properties
def test_penalties_are_nonnegative_and_zero_only_at_the_prior():
    mu, logvar = f32(*random_gaussian((1000, M)))
    for fn in (losses.w2_squared, losses.kl_divergence):
        assert np.all(np.asarray(fn(mu, logvar)) > 0)
        # one latent off the prior is enough to make the value positive
        for off in ([0.1, 0.0], [0.0, 0.1], [0.0, -0.1]):
            assert float(fn(jnp.array([off[0], 0.0]), jnp.array([off[1], 0.0]))) > 0


def test_t_gap_sign_follows_sigma_when_mu_is_zero():
    # Section 3: with mu = 0, T <= 0 when every sigma <= 1 and T >= 0 when every sigma >= 1.
    mu = jnp.zeros((500, M))
    logvar = -jnp.abs(jnp.asarray(RNG.normal(scale=3, size=(500, M)), jnp.float32))
    assert np.all(np.asarray(losses.t_gap(mu, logvar)) <= 0)
    assert np.all(np.asarray(losses.t_gap(mu, -logvar)) >= 0)


@pytest.mark.parametrize("name", ["w2_squared", "kl_divergence", "t_gap", "bernoulli_nll", "squared_error"])
def test_batched_equals_stacked_and_keeps_leading_shape(name):
    fn = getattr(losses, name)
    a, b = f32(*random_gaussian((3, 4, 6)))
    if name == "bernoulli_nll":
        b = jax.nn.sigmoid(b)
    batched = fn(a, b)
    assert batched.shape == (3, 4)
    stacked = jnp.stack([jnp.stack([fn(a[i, j], b[i, j]) for j in range(4)]) for i in range(3)])
    np.testing.assert_array_equal(batched, stacked)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"mu.shape=\(3,\).*logvar.shape=\(4,\)"):
        losses.w2_squared(jnp.zeros(3), jnp.zeros(4))


def test_no_python_branching_on_values_under_jit():
    mu, logvar = f32(*random_gaussian((2, M)))
    for fn in (losses.w2_squared, losses.kl_divergence, losses.t_gap):
        # the same float32 operations, fused by XLA under jit: a few ulps
        np.testing.assert_allclose(jax.jit(fn)(mu, logvar), fn(mu, logvar), rtol=1e-6)


def test_import_is_light():
    code = ("import sys, jaxwvae.losses; bad = [m for m in ('statsmodels', 'tensorflow', 'matplotlib', 'flax') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ----------------------------------------------------------------- WAE-MMD
def mmd_reference(z, zp, scales=(0.1, 0.2, 0.5, 1, 2, 5, 10), prior_var=1.0):
    """The WAE reference estimator, written as plain double loops in float64."""
    n, d = z.shape
    total = 0.0
    for s in scales:
        c = s * 2 * d * prior_var
        k = lambda a, b: c / (c + np.sum((a - b) ** 2))  # noqa: E731
        within = sum(k(z[i], z[j]) + k(zp[i], zp[j]) for i in range(n) for j in range(n) if i != j)
        cross = sum(k(z[i], zp[j]) for i in range(n) for j in range(n))
        total += within / (n * (n - 1)) - 2 * cross / n**2
    return total


def test_mmd_matches_double_loop_reference():
    z, zp = RNG.normal(size=(2, 12, 8)) + np.array([[0.5], [0.0]])[:, :, None]
    # float32: a difference of O(1) kernel means, from distances expanded as |a|² + |b|² - 2a·b (which
    # loses digits for close codes); MMD ~0.1 here, so 1e-4 relative is ~1e-5 absolute
    np.testing.assert_allclose(losses.mmd_imq(*f32(z, zp)), mmd_reference(z, zp), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(losses.mmd_imq(*f32(z, zp), scales=(1.0,), prior_var=2.0),
                               mmd_reference(z, zp, scales=(1.0,), prior_var=2.0), rtol=1e-4, atol=1e-6)


def test_mmd_is_symmetric_and_permutation_invariant():
    z, zp = f32(*RNG.normal(size=(2, 16, 5)))
    perm = RNG.permutation(16)
    base = losses.mmd_imq(z, zp)
    # The value is a difference of seven O(1) kernel means, each a float32 sum over 256 pairs whose
    # order the permutation changes: agreement to ~1e-5 absolute is all float32 can promise.
    np.testing.assert_allclose(losses.mmd_imq(zp, z), base, rtol=0, atol=1e-5)
    np.testing.assert_allclose(losses.mmd_imq(z[perm], zp), base, rtol=0, atol=1e-5)


def test_mmd_gradient_is_finite_when_two_codes_coincide():
    z, zp = f32(*RNG.normal(size=(2, 8, 4)))
    z = z.at[1].set(z[0])
    g = jax.grad(lambda a: losses.mmd_imq(a, zp))(z)
    assert np.all(np.isfinite(g))


def test_mmd_has_mean_zero_under_the_prior_and_grows_with_a_shift():
    keys = jax.random.split(jax.random.key(1), 400)
    draws = jax.vmap(lambda k: losses.mmd_imq(*jax.random.normal(k, (2, 50, 8))))(keys)
    se = float(jnp.std(draws)) / np.sqrt(len(draws))
    assert abs(float(jnp.mean(draws))) < 4 * se  # the U-statistic is unbiased: 4 standard errors of 400 draws
    z, zp = jax.random.normal(jax.random.key(2), (2, 100, 8))
    values = [float(losses.mmd_imq(z + shift, zp)) for shift in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(values, values[1:])), values


def test_mmd_batches_over_leading_axes():
    z, zp = f32(*RNG.normal(size=(2, 3, 10, 4)))
    batched = losses.mmd_imq(z, zp)
    assert batched.shape == (3,)
    # a difference of O(1) float32 means: compare to ~1e-5 absolute (see the permutation test)
    np.testing.assert_allclose(batched, [losses.mmd_imq(z[i], zp[i]) for i in range(3)], rtol=0, atol=1e-5)
