"""jaxwvae.reports.stats against independent references: mpmath's t quantile, statsmodels' Welch test, brute force."""

import ast
import itertools
import json
import math
import pathlib

import mpmath
import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.weightstats import ttest_ind

from jaxwvae.reports import stats

STATSMODELS_ALTERNATIVE = {"less": "smaller", "greater": "larger", "two-sided": "two-sided"}


def t_quantile_mpmath(q: float, df: int) -> float:
    """Student-t quantile for q > 0.5 from mpmath at 50 digits: solve 1 - I_{df/(df+t²)}(df/2, 1/2) / 2 = q."""
    mpmath.mp.dps = 50

    def cdf_minus_q(t):
        return 1 - mpmath.betainc(df / 2, mpmath.mpf(1) / 2, 0, df / (df + t * t), regularized=True) / 2 - q

    return float(mpmath.findroot(cdf_minus_q, 2))


@pytest.mark.parametrize("n", [2, 3, 10, 30])
def test_interval_matches_a_float64_reference_with_mpmaths_quantile(n):
    x = np.random.default_rng(n).normal(20.0, 3.0, size=n)
    mean, sd = float(np.mean(x)), float(np.std(x, ddof=1))
    half = t_quantile_mpmath(0.975, n - 1) * sd / math.sqrt(n)
    s = stats.summary(list(x))
    assert s["n"] == n and s["interval"] == "t" and s["level"] == 0.95
    # 1e-10: scipy's t.ppf and mpmath's root agree to ~1e-14; the rest is float64 rounding of sums.
    np.testing.assert_allclose([s["mean"], s["sd"], s["ci_low"], s["ci_high"]],
                               [mean, sd, mean - half, mean + half], rtol=1e-10)


def test_interval_covers_the_true_mean_95_percent_of_the_time():
    # 2,000 normal samples of n = 10. The count covered is Binomial(2000, 0.95): sd sqrt(.95 · .05 / 2000)
    # = 0.0049, so [0.93, 0.97] is ±4 sd: a correct interval fails this about once in 15,000 seeds,
    # while a z interval (coverage 0.92 at n = 10) or a missing sqrt(n) would fail it.
    rng = np.random.default_rng(0)
    covered = 0
    for sample in rng.normal(5.0, 2.0, size=(2000, 10)):
        s = stats.summary(sample)
        covered += s["ci_low"] <= 5.0 <= s["ci_high"]
    assert 0.93 <= covered / 2000 <= 0.97


@pytest.mark.parametrize("alternative", ["less", "greater", "two-sided"])
@pytest.mark.parametrize("na, nb, sa, sb", [(5, 9, 1.0, 4.0), (30, 30, 2.0, 2.0), (3, 12, 0.5, 3.0)])
def test_welch_matches_statsmodels(alternative, na, nb, sa, sb):
    rng = np.random.default_rng(na * 100 + nb)
    a, b = rng.normal(10.0, sa, size=na), rng.normal(11.0, sb, size=nb)
    t, p, df = ttest_ind(a, b, usevar="unequal", alternative=STATSMODELS_ALTERNATIVE[alternative])
    got = stats.welch(a, b, alternative=alternative)
    assert got["test"] == "welch" and got["reason"] is None
    # float64 on both sides, the same formulas and scipy's t distribution: round-off ~1e-14
    np.testing.assert_allclose([got["statistic"], got["df"], got["p"]], [t, df, p], rtol=1e-10)


def test_welch_with_one_constant_sample_is_defined_and_raises_no_warning():
    # Table 2's accuracies over 2 classifier seeds can be equal. With var_a = 0, t = (mean_a - mean_b) /
    # sqrt(var_b / n_b) and the Welch–Satterthwaite df reduce to n_b - 1; scipy warns of precision loss
    # for a constant sample, which pytest's warnings-as-errors would turn into a failure here.
    a, b = [97.0, 97.0], [95.0, 96.5, 96.0]
    got = stats.welch(a, b, alternative="greater")
    t = (97.0 - np.mean(b)) / math.sqrt(np.var(b, ddof=1) / 3)
    # 1e-10: the same float64 formula, round-off only
    np.testing.assert_allclose([got["statistic"], got["df"], got["p"]], [t, 2.0, st.t.sf(t, 2)], rtol=1e-10)


def brute_force_mann_whitney(a, b, alternative):
    """U of ``a`` by counting pairs (ties ½) and its p-value over every split of the pooled values."""
    def u_of(xs, ys):
        return sum((x > y) + 0.5 * (x == y) for x in xs for y in ys)

    pooled = list(a) + list(b)
    observed = u_of(a, b)
    us = []
    for idx in itertools.combinations(range(len(pooled)), len(a)):
        rest = [pooled[i] for i in range(len(pooled)) if i not in idx]
        us.append(u_of([pooled[i] for i in idx], rest))
    us = np.asarray(us)
    low, high = np.mean(us <= observed), np.mean(us >= observed)
    return observed, {"less": low, "greater": high, "two-sided": min(1.0, 2 * min(low, high))}[alternative]


@pytest.mark.parametrize("alternative", ["less", "greater", "two-sided"])
@pytest.mark.parametrize("a, b, method", [
    ([1.2, 3.4, 0.5], [2.2, 5.1, 4.4, 6.0], "exact"),
    ([7.0, 1.0, 3.5, 2.5, 9.0], [4.0, 8.0, 6.0, 5.5, 10.0, 0.2], "exact"),
    ([1.0, 1.0, 2.0], [1.0, 2.0, 2.0, 3.0], "permutation"),
    ([90.1, 90.1, 91.3], [91.3, 92.0, 92.0], "permutation"),
    ([2.0], [1.0, 2.0, 2.0, 3.0], "permutation"),  # a lone value: scipy's permutation test needs two
    ([1.0, 2.0, 2.0, 3.0, 4.0], [2.0], "permutation"),
])
def test_mann_whitney_matches_a_brute_force_permutation_test(a, b, method, alternative):
    u, p = brute_force_mann_whitney(a, b, alternative)
    got = stats.mann_whitney(a, b, alternative=alternative)
    assert got["test"] == "mann-whitney" and got["method"] == method
    assert got["U"] == u
    # 1e-12: both are a count over the same finite set of splits; scipy's exact two-sided p is
    # twice the smaller tail too, which is what the brute force computes.
    np.testing.assert_allclose(got["p"], p, rtol=1e-12)


def test_mann_whitney_u_by_hand():
    # a = [1, 4], b = [2, 3, 5]: a beats b in (4, 2) and (4, 3), so U = 2 of 6 pairs.
    assert stats.mann_whitney([1, 4], [2, 3, 5], alternative="less")["U"] == 2.0
    # with a tie (3 = 3) counted as ½: (3, 2), (3, 3)/2, (4, 2), (4, 3) -> 3.5
    assert stats.mann_whitney([3, 4], [2, 3, 5], alternative="less")["U"] == 3.5


def test_mann_whitney_normal_approximation_with_ties_by_formula():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 6, size=30).astype(float), rng.integers(1, 7, size=25).astype(float)
    got = stats.mann_whitney(a, b, alternative="less")
    assert got["method"] == "asymptotic"
    m, n = len(a), len(b)
    u = sum((x > y) + 0.5 * (x == y) for x in a for y in b)
    _, counts = np.unique(np.concatenate([a, b]), return_counts=True)
    big_n = m + n
    var = m * n / 12 * ((big_n + 1) - np.sum(counts ** 3 - counts) / (big_n * (big_n - 1)))
    z = (u + 0.5 - m * n / 2) / math.sqrt(var)  # continuity correction of ½ towards the mean
    assert got["U"] == u
    np.testing.assert_allclose(got["p"], st.norm.cdf(z), rtol=1e-10)  # the same float64 formula: round-off only


def test_separated_samples_give_small_p_and_identical_samples_large_p():
    rng = np.random.default_rng(2)
    low, high = rng.normal(20.0, 1.0, size=10), rng.normal(30.0, 1.0, size=10)
    c = stats.compare(low, high, alternative="less")
    assert c["welch"]["p"] < 1e-6 and c["mann_whitney"]["p"] < 1e-4  # exact MW floor: 1 / C(20, 10) = 5e-6
    same = stats.compare(low, low, alternative="less")
    # identical samples: t = 0 gives p = 0.5 up to float64 round-off (approx: 1e-6 relative)
    assert same["welch"]["p"] == pytest.approx(0.5) and same["mann_whitney"]["p"] > 0.4
    wrong_way = stats.compare(high, low, alternative="less")
    assert wrong_way["welch"]["p"] > 0.999 and wrong_way["mann_whitney"]["p"] > 0.999


def test_missing_values_are_dropped_and_not_counted():
    s = stats.summary([1.0, None, float("nan"), 3.0, float("inf")])
    assert s["n"] == 2 and s["mean"] == 2.0
    c = stats.compare([1.0, None, 2.0, float("nan")], [3.0, 4.0, None], alternative="less")
    assert (c["n_a"], c["n_b"]) == (2, 2)
    assert c["welch"]["statistic"] == stats.welch([1.0, 2.0], [3.0, 4.0], alternative="less")["statistic"]


def test_edges_are_none_with_a_reason_and_never_nan():
    assert stats.summary([]) == {"n": 0, "mean": None, "sd": None, "ci_low": None, "ci_high": None,
                                 "interval": "t", "level": 0.95}
    assert stats.summary([None, float("nan")])["n"] == 0
    one = stats.summary([4.0])
    assert one["mean"] == 4.0 and one["sd"] is None and one["ci_low"] is None
    flat = stats.summary([2.5, 2.5, 2.5])
    assert flat["sd"] == 0.0 and flat["ci_low"] == flat["ci_high"] == 2.5

    small = stats.compare([1.0], [2.0, 3.0], alternative="less")
    assert small["welch"]["p"] is None and "2 or more" in small["welch"]["reason"]
    assert small["mann_whitney"]["p"] == pytest.approx(1 / 3)  # the 1 is lowest in 1 of the 3 splits (a ratio)
    empty = stats.compare([], [2.0, 3.0], alternative="less")
    assert empty["mann_whitney"]["p"] is None and "finite value" in empty["mann_whitney"]["reason"]
    tied = stats.compare([1.0, 1.0, 1.0], [1.0, 1.0], alternative="less")
    assert tied["welch"]["p"] is None and "constant" in tied["welch"]["reason"]
    assert tied["mann_whitney"]["p"] == 1.0 and tied["mann_whitney"]["method"] == "all tied"
    constant_apart = stats.compare([1.0, 1.0], [2.0, 2.0], alternative="less")
    assert constant_apart["welch"]["p"] is None
    assert constant_apart["mann_whitney"]["p"] == pytest.approx(1 / 6)  # 1 split of C(4, 2) = 6

    for result in (one, flat, small, empty, tied, constant_apart, stats.summary([])):
        json.dumps(result, allow_nan=False)  # raises on NaN or inf


def test_bad_alternative_is_named():
    with pytest.raises(ValueError, match="'lower'"):
        stats.compare([1.0, 2.0], [3.0, 4.0], alternative="lower")


def test_formatting():
    s = {"n": 30, "mean": 12.34, "sd": 1.04, "ci_low": 11.6, "ci_high": 13.0}
    assert stats.format_summary(s) == "12.3 (1.0) [11.6, 13.0] n=30"
    assert stats.format_summary(stats.summary([4.0])) == "4.0 n=1"
    assert stats.format_summary(stats.summary([])) == "–"
    assert stats.format_p(2.4e-5) == "2.4e-05" and stats.format_p(0.031) == "0.031" and stats.format_p(None) == "–"
    c = stats.compare([1.0, 2.0, 3.0], [4.0, 5.0, 6.5], alternative="less")
    assert stats.format_test(c["welch"]).startswith("t = -3.41 (df 3.8), p = 0.015")
    assert stats.format_test(c["mann_whitney"]) == "U = 0, p = 0.05"
    assert "2 or more" in stats.format_test(stats.welch([1.0], [2.0], alternative="less"))


def test_stats_imports_only_numpy_and_scipy():
    tree = ast.parse((pathlib.Path(stats.__file__)).read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert names <= {"__future__", "math", "numpy", "scipy", "warnings"}, names
