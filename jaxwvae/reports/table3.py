"""The paper's Table 3: the mean training loss over seeds at the paper's iterations, ELBO_KL and ELBO_W.

``experiments/table3.py`` calls :func:`table3`; it reads (or runs) the same
sweeps as Table 1. Each claim "ELBO_W's loss < ELBO_KL's" is tested one-sided
per iteration (:func:`jaxwvae.reports.stats.compare`).
"""

from __future__ import annotations

import pathlib

import numpy as np

from jaxwvae.reports import cells, paper, stats
from jaxwvae.reports.shared import TESTS_NOTE, tests_markdown, variant_config
from jaxwvae.runs import rundir


def table3(out: pathlib.Path, common: dict, *, dataset: str = "mnist", pool=(), progress: bool = True) -> dict:
    """Mean training loss over seeds at the paper's iterations, ELBO_KL and ELBO_W; ``table3.md``/``.json``.

    ``pool``: further folders whose cells are pooled with ``out``'s (:func:`jaxwvae.reports.cells.cell`).
    Per row and iteration: ``per_image`` / ``per_batch`` (the means), ``per_image_summary`` /
    ``per_batch_summary`` (:func:`jaxwvae.reports.stats.summary`) and ``per_image_per_seed`` (``None`` where a
    seed's loss is not finite). ``tests``: :func:`table3_tests`.
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant in paper.VARIANTS[dataset]:
        if variant.name not in ("kl", "w", "w_fixed"):
            continue
        name = f"{dataset}_{variant.name}"
        c = cells.cell(variant_config(dataset, variant, common), out / name, [pathlib.Path(p) / name for p in pool],
                       progress=progress)
        rows.append(table3_row(variant, c.loss_at(), c.config.batch_size, len(c.seeds)))
    report = {"dataset": dataset, "rows": rows, "tests": table3_tests(rows)}
    rundir.write_json(out / "table3.json", report)
    rundir.atomic_write_bytes(out / "table3.md", table3_markdown(report).encode())
    return report


def table3_row(variant: paper.Variant, loss_at: dict[int, list], batch: int, seeds: int) -> dict:
    """One row of Table 3 from each of ``seeds`` seeds' training loss per image at the paper's iterations
    (``None``: not finite)."""
    per_seed = {s: [None if v is None or not np.isfinite(v) else float(v) for v in values]
                for s, values in loss_at.items()}
    per_image = {s: stats.summary(v) for s, v in per_seed.items()}
    per_batch = {s: stats.summary([None if v is None else v * batch for v in vs]) for s, vs in per_seed.items()}
    return {"variant": variant.name, "label": variant.label,
            "per_image": {s: v["mean"] for s, v in per_image.items()},
            "per_batch": {s: v["mean"] for s, v in per_batch.items()},
            "per_image_summary": per_image, "per_batch_summary": per_batch, "per_image_per_seed": per_seed,
            "paper_per_batch": paper.TABLE3.get(variant.paper_key, {}), "seeds": seeds,
            "batch_size": batch}


def table3_tests(rows: list[dict]) -> list[dict]:
    """Per iteration, the paper's claim "ELBO_W's loss < ELBO_KL's", one-sided, for each ELBO_W row.

    Each entry: ``step``, ``lower`` (``w`` or ``w_fixed``), ``higher`` (``kl``), ``claim`` and
    :func:`jaxwvae.reports.stats.compare` of the per-seed losses per image with ``alternative="less"``
    (a sum over the batch is the same test: the scale does not change t, U or p).
    """
    by = {r["variant"]: r for r in rows}
    out = []
    if "kl" not in by:
        return out
    for step in paper.TABLE3_STEPS:
        for lower in ("w", "w_fixed"):
            if lower in by and step in by[lower]["per_image_per_seed"] and step in by["kl"]["per_image_per_seed"]:
                out.append({"step": step, "lower": lower, "higher": "kl",
                            "claim": f"{by[lower]['label']} < {by['kl']['label']}",
                            **stats.compare(by[lower]["per_image_per_seed"][step],
                                            by["kl"]["per_image_per_seed"][step], alternative="less")})
    return out


def table3_markdown(report: dict) -> str:
    rows = report["rows"]
    batch = rows[0]["batch_size"] if rows else 100
    lines = [f"Training loss over seeds at iteration t (the batch at step t, before its update), "
             f"{report['dataset']}; summed over a batch of {batch} images like the paper: mean (sd) "
             f"[95 % Student-t interval on the mean] n seeds, then the mean per image. "
             f"ELBO_W includes λ_t · W2².", ""]
    header = ("| iteration | " + " | ".join(f"{r['label']} (n={r['seeds']})" for r in rows)
              + " | paper ELBO_KL | paper ELBO_W |")
    lines += [header, "|" + "---|" * (len(rows) + 3)]
    for s in paper.TABLE3_STEPS:
        cells = [_table3_cell(r, s) for r in rows]
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {paper.TABLE3['kl'][s]:.0f} | {paper.TABLE3['w'][s]:.0f} |")
    if report.get("tests"):
        lines += ["", "The paper's claim, ELBO_W's loss below ELBO_KL's, tested one-sided at each iteration on the "
                  "per-seed losses (small p supports it), for both ELBO_W rows. " + TESTS_NOTE, ""]
        lines += tests_markdown(report["tests"], [("iteration", "step")])
    return "\n".join(lines) + "\n"


def _table3_cell(row: dict, step: int) -> str:
    """``"mean (sd) [ci] n=N; m per image"`` per batch, or "–" for an iteration the run has no finite loss at."""
    summary = row["per_batch_summary"].get(step)
    if summary is None or summary["mean"] is None:
        return "–"
    return f"{stats.format_summary(summary, digits=0)}; {row['per_image'][step]:.1f} per image"
