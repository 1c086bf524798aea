"""What the paper's tables share: the sweep of a table row (read, resumed or trained), summaries, tests' markdown.

Each table row is one sweep (a run folder under the table's ``--out``): an
existing finished run is read, a killed one is resumed, a missing one is
trained. A number read from a run's JSON may be ``None`` (written for NaN): it
counts as missing, like NaN.
"""

from __future__ import annotations

import dataclasses
import pathlib
import statistics

import jax
import numpy as np

from jaxwvae.config import SweepConfig, paper_mnist
from jaxwvae.engine import sweep
from jaxwvae.engine.results import classify
from jaxwvae.reports import paper, stats
from jaxwvae.runs import rundir

# Fields that change where or how often a run is saved, not what it computes.
RUNTIME_FIELDS = ("data_dir", "steps_per_call", "checkpoint_every", "replica_loop")


def variant_config(dataset: str, variant: paper.Variant, common: dict) -> SweepConfig:
    """The paper's setting for ``dataset`` with the variant's fields and the command's common flags."""
    return paper_mnist(dataset=dataset, **variant.fields, **common).resolved()


def run_variant(config: SweepConfig, out: pathlib.Path, *, progress: bool = True) -> dict:
    """Results of the sweep in ``out``: read if finished, resumed if killed, trained if absent.

    Every run is classified again by the current ``jaxwvae.engine.results`` criteria (a finished sweep
    keeps the reasons of the version that wrote it).
    """
    if (out / rundir.CONFIG).exists():
        saved = SweepConfig.from_json(rundir.read_json(out / rundir.CONFIG)["config"])
        config = dataclasses.replace(config, **{f: getattr(saved, f) for f in RUNTIME_FIELDS})
        results = sweep.run(config, out, resume=True, progress=progress)
    else:
        results = sweep.run(config, out, progress=progress)
    for r in results["runs"]:
        r["excluded"], r["reason"] = classify(r)
    return results


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
