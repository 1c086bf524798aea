"""What the paper's tables share: a row's config, summaries, tests' markdown.

Each table row is one cell (:mod:`jaxwvae.reports.cells`). A number read from a
run's JSON may be ``None`` (written for NaN): it counts as missing, like NaN.
"""

from __future__ import annotations

import statistics

import jax
import numpy as np

from jaxwvae.config import SweepConfig, paper_mnist
from jaxwvae.reports import paper, stats


def variant_config(dataset: str, variant: paper.Variant, common: dict) -> SweepConfig:
    """The paper's setting for ``dataset`` with the variant's fields and the command's common flags."""
    return paper_mnist(dataset=dataset, **variant.fields, **common).resolved()


def mean_sd(values) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count of the finite values; NaN for none.

    ``None``, NaN and ±inf are left out. :func:`jaxwvae.reports.stats.summary` gives the interval as well.
    """
    values = stats.finite(values).tolist()
    if not values:
        return float("nan"), float("nan"), 0
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), sd, len(values)


def one_replica(params, r):
    """Replica ``r``'s parameters, keeping a leading axis of 1."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[r:r + 1], params)


TESTS_NOTE = ("Welch's t: p from Student's t with the Welch–Satterthwaite df. Mann–Whitney U: U counts the "
              "pairs where the first sample is above the second (ties ½); p exact without ties, by enumerating "
              "every split with ties in small samples, else the normal approximation. n counts the finite values. "
              "No correction for multiple comparisons.")


def tests_markdown(tests: list[dict], first: list[tuple[str, str]]) -> list[str]:
    """Markdown rows of a table of tests: the ``first`` columns (header, key), the claim, n, both tests."""
    lines = ["| " + " | ".join(h for h, _ in first) + " | claim | n | Welch's t | Mann–Whitney U |",
             "|" + "---|" * (len(first) + 4)]
    for t in tests:
        lines.append("| " + " | ".join(str(t[k]) for _, k in first) + f" | {t['claim']} | {t['n_a']}, {t['n_b']} | "
                     f"{stats.format_test(t['welch'])} | {stats.format_test(t['mann_whitney'])} |")
    return lines
