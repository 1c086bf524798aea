"""jaxwvae.evaluation.fid against scipy.sqrtm, closed forms and an SVD reference for singular covariances."""

import numpy as np
import pytest
import scipy.linalg

from jaxwvae.evaluation.fid import feature_stats, fid, frechet_distance

RNG = np.random.default_rng(2109_14795)

# Tolerances: everything is float64. 1e-12 relative where the value is a handful of operations
# (closed forms, means, covariances); 1e-9 relative where a matrix square root, an eigen- or a
# singular value decomposition of a d x d (d <= 128) matrix stands between the two sides: their
# round-off is ~1e-13..1e-11 here, and a wrong formula (a missing factor 2, a transposed product)
# moves the value by > 1e-2 of itself. A value that is 0 in exact arithmetic is bounded by 1e-9 of the
# covariance's trace (1e-9 absolute where that trace is O(1)).


def random_features(n, d, scale=1.0, shift=0.0):
    mix = RNG.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)
    return shift + scale * RNG.normal(size=(n, d)) @ mix


def sqrtm_reference(mu1, cov1, mu2, cov2):
    """The usual FID formula: tr(c1 + c2 - 2 sqrtm(c1 @ c2)) via scipy."""
    cross = scipy.linalg.sqrtm(cov1 @ cov2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2) - 2 * np.trace(np.real(cross)))


def svd_reference(a, b):
    """FID from the data: nonzero eig(c1^1/2 c2 c1^1/2) = squared singular values of A B^T / sqrt((n_a-1)(n_b-1)).

    With centred data A [n_a, d], B [n_b, d], c1 = A^T A / (n_a - 1) and c2 = B^T B / (n_b - 1),
    tr (c1^1/2 c2 c1^1/2)^1/2 is the nuclear norm of A B^T over sqrt((n_a - 1)(n_b - 1)): no d x d root.
    """
    a_c, b_c = a - a.mean(0), b - b.mean(0)
    k = np.sqrt((len(a) - 1) * (len(b) - 1))
    nuclear = np.sum(np.linalg.svd(a_c @ b_c.T, compute_uv=False)) / k
    tr1 = np.sum(a_c**2) / (len(a) - 1)
    tr2 = np.sum(b_c**2) / (len(b) - 1)
    return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + tr1 + tr2 - 2 * nuclear)


@pytest.mark.parametrize("d", [1, 5, 32])
def test_matches_scipy_sqrtm(d):
    a, b = random_features(400, d), random_features(500, d, scale=1.3, shift=0.5)
    stats_a, stats_b = feature_stats(a), feature_stats(b)
    expected = sqrtm_reference(*stats_a, *stats_b)
    assert frechet_distance(*stats_a, *stats_b) == pytest.approx(expected, rel=1e-9)
    assert fid(a, b) == pytest.approx(svd_reference(a, b), rel=1e-9)


def test_feature_stats_like_numpy_cov_ddof1():
    a = random_features(50, 7)
    mu, cov = feature_stats(a.astype(np.float32))
    assert mu.dtype == cov.dtype == np.float64
    np.testing.assert_allclose(mu, a.astype(np.float32).mean(0, dtype=np.float64), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(a.astype(np.float32).astype(np.float64), rowvar=False, ddof=1),
                               rtol=1e-12, atol=1e-14)
    assert feature_stats(a[:, :1])[1].shape == (1, 1)


def test_one_dimensional_closed_form():
    m1, s1, m2, s2 = 0.3, 1.7, -1.1, 0.4
    value = frechet_distance(np.array([m1]), np.array([[s1**2]]), np.array([m2]), np.array([[s2**2]]))
    assert value == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-12)


def test_diagonal_closed_form():
    d = 16
    m1, m2 = RNG.normal(size=d), RNG.normal(size=d)
    s1, s2 = RNG.uniform(0.1, 3.0, size=d), RNG.uniform(0.0, 3.0, size=d)
    s2[:3] = 0.0  # singular second covariance
    value = frechet_distance(m1, np.diag(s1**2), m2, np.diag(s2**2))
    assert value == pytest.approx(np.sum((m1 - m2) ** 2 + (s1 - s2) ** 2), rel=1e-12)


def test_equal_inputs_give_zero():
    a = random_features(300, 20, scale=5.0, shift=3.0)
    mu, cov = feature_stats(a)
    assert 0.0 <= frechet_distance(mu, cov, mu, cov) <= 1e-9 * np.trace(cov)
    assert 0.0 <= fid(a, a) <= 1e-9 * np.trace(cov)


def test_symmetric_and_rotation_invariant():
    d = 24
    a, b = random_features(200, d), random_features(300, d, scale=0.7, shift=-0.2)
    q, _ = np.linalg.qr(RNG.normal(size=(d, d)))
    value = fid(a, b)
    assert value > 0
    assert fid(b, a) == pytest.approx(value, rel=1e-9)
    assert fid(a @ q, b @ q) == pytest.approx(value, rel=1e-9)


def test_fewer_samples_than_dimensions():
    a, b = random_features(50, 128), random_features(40, 128, scale=1.2, shift=0.1)
    mu, cov = feature_stats(a)
    assert np.linalg.matrix_rank(cov) == 49
    value = fid(a, b)
    assert np.isfinite(value) and value > 0 and isinstance(value, float)
    assert value == pytest.approx(svd_reference(a, b), rel=1e-9)
    # the same samples twice: singular and equal covariances give 0, not a negative or complex value
    assert 0.0 <= fid(a, a) <= 1e-9 * np.trace(cov)
    # rank-1 covariance against a full-rank one
    line, full = RNG.normal(size=(2, 8)), random_features(30, 8)
    assert fid(line, full) == pytest.approx(svd_reference(line, full), rel=1e-9)
    assert fid(full, line) == pytest.approx(svd_reference(line, full), rel=1e-9)
    assert 0.0 <= fid(line, line) <= 1e-9


def test_mean_shift_adds_its_squared_norm():
    a, b = random_features(200, 10), random_features(250, 10, scale=1.5)
    shift = RNG.normal(size=10)
    assert fid(a, a + shift) == pytest.approx(np.sum(shift**2), rel=1e-9)
    mu_a, cov_a = feature_stats(a)
    mu_b, cov_b = feature_stats(b)
    gap = mu_a - mu_b
    increase = frechet_distance(mu_a, cov_a, mu_b - shift, cov_b) - frechet_distance(mu_a, cov_a, mu_b, cov_b)
    assert increase == pytest.approx(np.sum((gap + shift) ** 2) - np.sum(gap**2), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("bad", [
    lambda mu, cov: (mu[:-1], cov, mu, cov),
    lambda mu, cov: (mu, cov[:-1], mu, cov),
    lambda mu, cov: (mu, cov, mu, cov[:-1, :-1]),
    lambda mu, cov: (mu, cov * np.nan, mu, cov),
])
def test_rejects_bad_shapes_and_values(bad):
    mu, cov = feature_stats(random_features(20, 4))
    with pytest.raises(ValueError):
        frechet_distance(*bad(mu, cov))
    with pytest.raises(ValueError):
        feature_stats(np.zeros((1, 4)))
