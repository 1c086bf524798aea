"""The paper's Table 1 (FID of each objective, seeds over/underfit kept or left out) and its pictures.

``experiments/table1.py`` calls :func:`table1`. FID here is computed on the
features of a small CNN classifier trained on the dataset
(``jaxwvae.evaluation.classifier.feature_params``), not on InceptionV3's: the
numbers are not on the paper's scale, so the table compares rankings and
ratios. With ``inception_weights`` (pytorch-fid's ``pt_inception-2015-12-05``
file) the Inception scale is used instead.

Every cell carries :func:`jaxwvae.reports.stats.summary` (n, mean, sd, 95 % Student-t
interval) and every ranking the paper claims gets :func:`jaxwvae.reports.stats.compare`
(one-sided Welch's t and Mann–Whitney U) under ``"tests"`` in the JSON and below
the markdown table.
"""

from __future__ import annotations

import pathlib

from jaxwvae import data
from jaxwvae.evaluation import generate
from jaxwvae.evaluation.replica_fid import FID_SAMPLES, FidScorer
from jaxwvae.reports import cells, paper, plots, stats
from jaxwvae.reports.shared import TESTS_NOTE, mean_sd, tests_markdown, variant_config
from jaxwvae.runs import rundir


def fmt(mean: float, sd: float) -> str:
    return "–" if mean != mean else f"{mean:.1f} ({sd:.1f})"


def table1(out: pathlib.Path, common: dict, *, datasets=("mnist", "fashion_mnist"), pool=(), inception_weights=None,
           fid_samples: int = FID_SAMPLES, feature_recipe: dict | None = None, progress: bool = True) -> dict:
    """Run or read every cell of Table 1, pooled with ``pool``'s; compute FIDs; write ``table1.md``/``.json``, pictures.

    ``pool``: further folders laid out like ``out`` whose cells are pooled with ``out``'s
    (:func:`jaxwvae.reports.cells.cell`). The pictures need the parameters of the median-FID seed:
    they are left out (``"pictures": false``) when its folder holds only a summary.
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, pictures = [], {}
    for dataset in datasets:
        scorer = FidScorer(dataset, common.get("data_dir"), inception_weights, feature_recipe, fid_samples)
        by_variant = {}
        for variant in paper.VARIANTS[dataset]:
            name = f"{dataset}_{variant.name}"
            c = cells.cell(variant_config(dataset, variant, common), out / name,
                           [pathlib.Path(p) / name for p in pool], progress=progress)
            fids = c.fids(scorer)
            kept = [f for f, r in zip(fids, c.runs) if not r["excluded"]]
            m_all, sd_all, n_all = mean_sd(fids)
            m_kept, sd_kept, n_kept = mean_sd(kept)
            rows.append({
                "dataset": dataset, "variant": variant.name, "label": variant.label,
                "fid_all": [m_all, sd_all, n_all], "fid_kept": [m_kept, sd_kept, n_kept],
                "fid_all_summary": stats.summary(fids), "fid_kept_summary": stats.summary(kept),
                "paper": paper.TABLE1.get((dataset, variant.paper_key)) if variant.paper_key else None,
                "fid_per_seed": dict(zip(map(str, c.seeds), fids)),
                "excluded": {str(r["seed"]): r["reason"] for r in c.runs if r["excluded"]},
                "train_s": c.train_s, "device": c.device, "runs": [str(f) for f in c.folders],
            })
            by_variant[variant.name] = c
        pictures[dataset] = write_pictures(out, dataset, [r for r in rows if r["dataset"] == dataset], by_variant,
                                           common.get("data_dir"))
    report = {"features": scorer.name, "fid_samples": fid_samples, "rows": rows,
              "ratios": fid_ratios(rows), "tests": table1_tests(rows), "pictures": pictures}
    rundir.write_json(out / "table1.json", report)
    rundir.atomic_write_bytes(out / "table1.md", table1_markdown(report).encode())
    return report


def fid_ratios(rows: list[dict]) -> list[dict]:
    """FID(other) / FID(ELBO_W) per dataset, for both ELBO_W rows (adaptive λ, λ = 1); ours and the paper's.

    The paper's ratio is against its ELBO_W (adaptive λ) value in either case.
    """
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        by = {r["variant"]: r for r in rows if r["dataset"] == dataset}
        paper_w = by["w"]["paper"] if "w" in by else None
        for base in ("w", "w_fixed"):
            if base not in by:
                continue
            for name, row in by.items():
                if name in ("w", "w_fixed"):
                    continue
                theirs = (row["paper"][0] / paper_w[0]) if row["paper"] and paper_w else None
                out.append({"dataset": dataset, "ratio": f"{row['label']} / {by[base]['label']}",
                            "ours": _ratio(row["fid_all"][0], by[base]["fid_all"][0]), "paper": theirs})
    return out


def _ratio(a, b) -> float | None:
    """``a / b``, or None when either is missing (None, NaN, ±inf) or ``b`` is 0."""
    if len(stats.finite([a, b])) < 2 or b == 0:
        return None
    return a / b


# Table 1's ranking claimed by the paper, lower FID first: ELBO_W < WAE-MMD < ELBO_KL. Each ELBO_W row
# (adaptive λ, λ = 1 fixed) is tested against the two others; WAE-MMD against ELBO_KL once.
TABLE1_CLAIMS = (("w", "wae"), ("w_fixed", "wae"), ("wae", "kl"), ("w", "kl"), ("w_fixed", "kl"))


def kept_fids(row: dict) -> list:
    """A Table 1 row's per-seed FIDs without the excluded seeds (``None`` entries kept: they count as missing)."""
    return [v for seed, v in row["fid_per_seed"].items() if seed not in row["excluded"]]


def table1_tests(rows: list[dict]) -> list[dict]:
    """One-sided tests of each claimed FID ranking "A < B" per dataset, over all seeds and over the kept ones.

    Each entry: ``dataset``, ``seeds`` (``"all"`` or ``"kept"``), ``lower`` and ``higher`` (variant names),
    ``claim`` (labels), and :func:`jaxwvae.reports.stats.compare` of A's per-seed FIDs against B's with
    ``alternative="less"``: Welch's t and Mann–Whitney U, p small when A's FIDs are lower.
    """
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        by = {r["variant"]: r for r in rows if r["dataset"] == dataset}
        for seeds, values in (("all", lambda r: list(r["fid_per_seed"].values())), ("kept", kept_fids)):
            for lower, higher in TABLE1_CLAIMS:
                if lower in by and higher in by:
                    out.append({"dataset": dataset, "seeds": seeds, "lower": lower, "higher": higher,
                                "claim": f"{by[lower]['label']} < {by[higher]['label']}",
                                **stats.compare(values(by[lower]), values(by[higher]), alternative="less")})
    return out


def table1_markdown(report: dict) -> str:
    scale = ("Inception (pytorch-fid weights)" if report["features"] == "inception" else
             "a small CNN classifier's 128-d features (NOT the paper's Inception scale: compare rankings and ratios, "
             "not values)")
    lines = [f"FID of {report['fid_samples']} prior samples per seed against the test images, on {scale}. "
             "Ours: mean (sd) [95 % Student-t interval on the mean] n seeds; the paper's: mean (sd).", "",
             "| dataset | objective | FID, all seeds | FID, over/underfit excluded | paper (Inception, 30 seeds) |",
             "|---|---|---|---|---|"]
    for r in report["rows"]:
        paper_value = fmt(*r["paper"]) if r["paper"] else "not in the paper"
        all_seeds = r.get("fid_all_summary") or stats.summary(r["fid_per_seed"].values())
        kept = r.get("fid_kept_summary") or stats.summary(kept_fids(r))
        lines.append(f"| {r['dataset']} | {r['label']} | {stats.format_summary(all_seeds)} | "
                     f"{stats.format_summary(kept)} | {paper_value} |")
    lines += ["", "FID ratios, all seeds (the paper's: its other objective over its ELBO_W, in both rows):", "",
              "| dataset | ratio | ours | paper |", "|---|---|---|---|"]
    for r in report["ratios"]:
        theirs = f"{r['paper']:.2f}" if r["paper"] else "–"
        ours = "–" if r["ours"] is None else f"{r['ours']:.2f}"
        lines.append(f"| {r['dataset']} | {r['ratio']} | {ours} | {theirs} |")
    if report.get("tests"):
        lines += ["", "The paper's ranking, ELBO_W < WAE-MMD < ELBO_KL in FID, tested one-sided per pair "
                  "(small p supports the claim), for both ELBO_W rows (`w`: adaptive λ; `w_fixed`: λ = 1 fixed); "
                  "seeds: all of each row's seeds, or those kept after the over/underfit exclusion. "
                  + TESTS_NOTE, ""]
        lines += tests_markdown(report["tests"], [("dataset", "dataset"), ("seeds", "seeds")])
    excluded = [(r["dataset"], r["label"], seed, why) for r in report["rows"] for seed, why in r["excluded"].items()]
    if excluded:
        lines += ["", "Excluded runs (jaxwvae.engine.results):", ""]
        lines += [f"- {d}, {label}, seed {seed}: {why}" for d, label, seed, why in excluded]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- pictures
def write_pictures(out: pathlib.Path, dataset: str, rows: list[dict], by_variant: dict, data_dir) -> bool:
    """Samples of each objective's median-FID seed; Figure 5: originals beside ELBO_W and ELBO_KL reconstructions.

    False (nothing written) when a median seed's folder holds only its summary.
    """
    chosen = {}
    for row in rows:
        fids = row["fid_per_seed"]
        finite = sorted((s for s, v in fids.items() if len(stats.finite([v])) == 1), key=fids.get)
        pool = finite or list(fids)  # no finite FID: any seed shows what the objective made
        seed = pool[len(pool) // 2]
        c = by_variant[row["variant"]]
        r = list(c.seeds).index(int(seed))
        if not c.has_parameters(r):
            return False
        chosen[row["variant"]] = (seed, r)
    samples, recons = {}, {}
    originals, _ = data.load(dataset, "test", data_dir)
    originals = originals[:32]
    for row in rows:
        seed, r = chosen[row["variant"]]
        model, one = by_variant[row["variant"]].parameters(r)
        value = row["fid_per_seed"][seed]
        label = f"{row['label']}, seed {seed} (FID {'–' if value is None else f'{value:.1f}'})"
        samples[label] = generate.to_uint8(generate.sample_prior(model, one, [int(seed)], 64))[0]
        if row["variant"] in ("w", "w_fixed", "kl"):
            recons[label] = generate.to_uint8(generate.reconstruct(model, one, originals))[0]
    plots.write_image_panels(out / f"samples_{dataset}.png", samples, cols=8,
                             title=f"{dataset}: 64 samples from the prior of the median-FID seed of each objective")
    if recons:
        plots.write_image_panels(out / f"figure5_{dataset}.png", {"test images": originals, **recons}, cols=4,
                                 title=f"{dataset}: test images and their reconstructions (decoder mean at z = μ)")
    return True
