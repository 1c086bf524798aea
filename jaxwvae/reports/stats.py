"""Summaries and two-sample tests for the tables, through ``scipy.stats``: mean, sd, a 95 % t interval,
Welch's t, Mann–Whitney U, Wilson intervals.

Pure numpy and scipy: no jax, light to import. Values may hold ``None`` (JSON null) and NaN or ±inf:
:func:`finite` drops them and the ``n`` reported counts only the finite values left. Nothing here returns
NaN: an undefined number is ``None``, with a ``reason`` where a test cannot be computed, so the dicts go
into JSON as they are. ``tests/test_stats.py`` checks each scipy call against an independent reference
(mpmath's t quantile, statsmodels' Welch test, a brute-force permutation test).

Conventions:

- ``sd`` is the sample standard deviation (``ddof = 1``).
- The interval is the two-sided 95 % Student-t interval on the mean,
  ``mean ± t_{0.975, n-1} · sd / sqrt(n)``; it assumes roughly normal values, and holds well for
  ``n`` of about 10 and more (``tests/test_stats.py`` checks its coverage).
- ``compare(a, b, alternative="less")`` tests the claim "``a`` is below ``b``" one-sided:
  small p-values support the claim. ``"greater"`` is the other one-sided claim, ``"two-sided"``
  any difference. Both tests use that same alternative.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats as _st

LEVEL = 0.95
ALTERNATIVES = ("less", "greater", "two-sided")
EXACT_MAX_N = 50  # Mann–Whitney without ties: exact null distribution up to this many values per sample
PERMUTATION_MAX_SPLITS = 100_000  # Mann–Whitney with ties: enumerate every split up to this many


def finite(values) -> np.ndarray:
    """The finite values of ``values`` as float64, with ``None``, NaN and ±inf dropped."""
    return np.asarray([float(v) for v in values if v is not None and math.isfinite(float(v))], np.float64)


def summary(values) -> dict:
    """``{"n", "mean", "sd", "ci_low", "ci_high", "interval", "level"}`` of the finite ``values``.

    ``sd`` has ``ddof = 1``; ``[ci_low, ci_high]`` is the 95 % Student-t interval on the mean,
    ``scipy.stats.t.interval(0.95, n - 1, loc=mean, scale=sd / sqrt(n))``, i.e.
    ``mean ± t_{0.975, n-1} · sd / sqrt(n)`` (``interval`` is ``"t"``, ``level`` 0.95). With no
    finite value every number is ``None``; with one, ``mean`` is that value and ``sd`` and the
    interval are ``None`` (a spread needs two values). Equal values give ``sd`` 0 and an interval
    of width 0 (scipy needs a positive scale, so that case is the mean itself).

    >>> round(summary([1.0, 2.0, None, 3.0])["ci_high"], 3)  # 2 + t(0.975, 2) / sqrt(3)
    4.484
    """
    x = finite(values)
    n = len(x)
    out = {"n": n, "mean": None, "sd": None, "ci_low": None, "ci_high": None, "interval": "t", "level": LEVEL}
    if n == 0:
        return out
    mean = float(np.mean(x))
    out["mean"] = mean
    if n < 2:
        return out
    sd = float(np.std(x, ddof=1))
    low, high = (mean, mean) if sd == 0 else _st.t.interval(LEVEL, n - 1, loc=mean, scale=sd / math.sqrt(n))
    out.update(sd=sd, ci_low=float(low), ci_high=float(high))
    return out


def welch(a, b, *, alternative: str) -> dict:
    """Welch's unequal-variance t test of the finite values of ``a`` against ``b``.

    ``scipy.stats.ttest_ind(a, b, equal_var=False, alternative=alternative)``:
    ``t = (mean_a - mean_b) / sqrt(var_a / n_a + var_b / n_b)`` with the Welch–Satterthwaite degrees of
    freedom and ``p`` from Student's t with those ``df``, one-sided for ``"less"`` (claim: mean of ``a``
    below ``b``'s) or ``"greater"``, both tails for ``"two-sided"``. Returns
    ``{"test": "welch", "alternative", "statistic", "df", "p", "reason"}``: ``p`` is ``None``, with the
    reason, when either sample has fewer than 2 finite values or both are constant (where scipy
    gives NaN). One constant sample is a valid test; scipy's "precision loss" warning, which it raises
    for any sample whose values are all equal, is silenced for that call only.
    """
    _check(alternative)
    x, y = finite(a), finite(b)
    out = {"test": "welch", "alternative": alternative, "statistic": None, "df": None, "p": None, "reason": None}
    if len(x) < 2 or len(y) < 2:
        out["reason"] = f"Welch's t needs 2 or more finite values per sample (got {len(x)} and {len(y)})"
        return out
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        out["reason"] = "both samples are constant: Welch's t is undefined"
        return out
    with warnings.catch_warnings():
        if np.ptp(x) == 0 or np.ptp(y) == 0:  # scipy takes an exactly constant sample for cancellation
            warnings.filterwarnings("ignore", "Precision loss occurred in moment calculation", RuntimeWarning)
        res = _st.ttest_ind(x, y, equal_var=False, alternative=alternative)
    out.update(statistic=float(res.statistic), df=float(res.df), p=float(res.pvalue))
    return out


def mann_whitney(a, b, *, alternative: str) -> dict:
    """Mann–Whitney U test (Wilcoxon rank-sum) of the finite values of ``a`` against ``b``.

    ``scipy.stats.mannwhitneyu(a, b, alternative=alternative, method=...)``. ``U`` is ``a``'s statistic:
    the number of pairs ``(a_i, b_j)`` with ``a_i > b_j``, ties counting ½, so a small ``U`` means ``a``
    tends to lie below ``b``. ``p`` is one-sided for ``"less"`` (claim: ``a`` stochastically below ``b``)
    or ``"greater"``, two-sided for ``"two-sided"`` (twice the smaller tail, at most 1). ``method`` says
    how it was found:

    - ``"exact"``: no ties and at most 50 values per sample; ``method="exact"``, the exact null
      distribution of U.
    - ``"permutation"``: ties, and at most 100,000 ways to split the pooled values;
      ``method=scipy.stats.PermutationMethod(n_resamples=np.inf)`` enumerates every split (the exact
      conditional test given the ties). scipy's permutation test needs two values per sample, so a
      sample of one value is tested over the ``n`` splits that place it, from the pooled mid-ranks.
    - ``"asymptotic"``: otherwise; ``method="asymptotic"``, the normal approximation with the tie and
      continuity corrections.
    - ``"all tied"``: every value equal, so every split gives the same ``U`` and ``p`` is 1 (no scipy call).

    Returns ``{"test": "mann-whitney", "alternative", "U", "p", "method",
    "reason"}``; ``p`` is ``None``, with the reason, when a sample has no finite value.
    """
    _check(alternative)
    x, y = finite(a), finite(b)
    out = {"test": "mann-whitney", "alternative": alternative, "U": None, "p": None, "method": None, "reason": None}
    if len(x) < 1 or len(y) < 1:
        out["reason"] = f"Mann–Whitney U needs a finite value in each sample (got {len(x)} and {len(y)})"
        return out
    both = np.concatenate([x, y])
    if np.all(both == both[0]):
        out.update(U=len(x) * len(y) / 2, p=1.0, method="all tied")
        return out
    ties = len(np.unique(both)) < len(both)
    if ties and min(len(x), len(y)) == 1:
        u, p = _lone_value_permutation(both, len(x) == 1, alternative)
        out.update(U=u, p=p, method="permutation")
        return out
    if ties and math.comb(len(both), len(x)) <= PERMUTATION_MAX_SPLITS:
        method, how = "permutation", _st.PermutationMethod(n_resamples=np.inf)
    else:
        method = how = "exact" if not ties and max(len(x), len(y)) <= EXACT_MAX_N else "asymptotic"
    res = _st.mannwhitneyu(x, y, alternative=alternative, method=how)
    out.update(U=float(res.statistic), p=float(res.pvalue), method=method)
    return out


def _lone_value_permutation(both: np.ndarray, first_alone: bool, alternative: str) -> tuple[float, float]:
    """``a``'s U and its permutation p when ``a`` (``first_alone``) or ``b`` is one value, the last of ``both``'s if ``b``.

    Each split puts the lone value at one of the ``n`` pooled positions: ``a`` alone at mid-rank ``r`` has
    ``U = r - 1``; ``b`` alone at ``r`` leaves ``a`` with ``U = (n - 1) - (r - 1) = n - r``.
    """
    ranks = _st.rankdata(both)
    us = ranks - 1 if first_alone else len(both) - ranks
    observed = us[0] if first_alone else us[-1]
    low, high = float(np.mean(us <= observed)), float(np.mean(us >= observed))
    return float(observed), {"less": low, "greater": high, "two-sided": min(1.0, 2 * min(low, high))}[alternative]


def compare(a, b, *, alternative: str) -> dict:
    """Both tests of ``a`` against ``b``: ``{"alternative", "n_a", "n_b", "welch", "mann_whitney"}``.

    ``welch`` is :func:`welch`'s dict (Welch's t, p from Student's t) and ``mann_whitney`` is
    :func:`mann_whitney`'s (U, exact, permutation or normal-approximation p); both one-sided for
    ``"less"`` / ``"greater"``, two-sided for ``"two-sided"``. ``n_a`` and ``n_b`` count the finite values.
    """
    _check(alternative)
    return {"alternative": alternative, "n_a": len(finite(a)), "n_b": len(finite(b)),
            "welch": welch(a, b, alternative=alternative), "mann_whitney": mann_whitney(a, b, alternative=alternative)}


def _check(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative={alternative!r}: use one of {', '.join(map(repr, ALTERNATIVES))}")


# ---------------------------------------------------------------------- markdown
def format_summary(s: dict | None, digits: int = 1) -> str:
    """A markdown cell ``"mean (sd) [ci_low, ci_high] n=N"``, e.g. ``"12.3 (1.0) [11.6, 13.0] n=30"``.

    ``"–"`` when there is no value; ``"12.3 n=1"`` for a single one.
    """
    if not s or s.get("mean") is None:
        return "–"
    d = digits
    if s["sd"] is None:
        return f"{s['mean']:.{d}f} n={s['n']}"
    return f"{s['mean']:.{d}f} ({s['sd']:.{d}f}) [{s['ci_low']:.{d}f}, {s['ci_high']:.{d}f}] n={s['n']}"


def format_p(p: float | None) -> str:
    """A p-value to two significant digits (``0.031``, ``2.4e-05``); ``"–"`` for ``None``."""
    return "–" if p is None else f"{p:.2g}"


def format_test(result: dict) -> str:
    """One test's dict as a markdown cell: ``"t = -5.21 (df 17.3), p = 2.4e-05"`` or ``"U = 3, p = 0.0011"``.

    An undefined test shows its reason.
    """
    if result["p"] is None:
        return f"– ({result['reason']})"
    if result["test"] == "welch":
        return f"t = {result['statistic']:.2f} (df {result['df']:.1f}), p = {format_p(result['p'])}"
    approx = " (normal approx.)" if result["method"] == "asymptotic" else ""
    return f"U = {result['U']:g}, p = {format_p(result['p'])}{approx}"


# ---------------------------------------------------------------------- proportions
def proportion(k: int, n: int) -> dict:
    """``{"k", "n", "fraction", "ci_low", "ci_high", "interval", "level"}``: ``k`` of ``n`` with a 95 % Wilson interval.

    ``scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")``: the Wilson
    score interval ``(p̂ + z²/2n ± z·sqrt(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)``, which stays inside [0, 1]
    and keeps its width at 0/n and n/n, where the normal interval collapses to a point.
    With ``n = 0`` every number is ``None``.

    >>> [round(v, 3) for v in (proportion(0, 5)["ci_low"], proportion(0, 5)["ci_high"])]
    [0.0, 0.434]
    """
    k, n = int(k), int(n)
    if not 0 <= k <= n:
        raise ValueError(f"proportion({k}, {n}): need 0 <= k <= n")
    out = {"k": k, "n": n, "fraction": None, "ci_low": None, "ci_high": None, "interval": "wilson", "level": LEVEL}
    if n == 0:
        return out
    ci = _st.binomtest(k, n).proportion_ci(confidence_level=LEVEL, method="wilson")
    out.update(fraction=k / n, ci_low=float(ci.low), ci_high=float(ci.high))
    return out


def format_proportion(s: dict) -> str:
    """A markdown cell ``"k/n [ci_low, ci_high]"``, e.g. ``"3/5 [0.23, 0.88]"``; ``"–"`` for n = 0."""
    if s["n"] == 0:
        return "–"
    return f"{s['k']}/{s['n']} [{s['ci_low']:.2f}, {s['ci_high']:.2f}]"


def format_comparison(result: dict) -> str:
    """:func:`compare`'s two tests in one markdown cell: ``"Welch p = …; MWU p = …"``."""
    return f"Welch p = {format_p(result['welch']['p'])}; MWU p = {format_p(result['mann_whitney']['p'])}"
