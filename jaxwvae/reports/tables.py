"""The paper's Tables 1 and 3 from sweeps of this library, beside the paper's values.

``experiments/table1.py`` and ``experiments/table3.py`` call :func:`table1` and
:func:`table3`. Each table row is one sweep (a run folder under the table's
``--out``): an existing finished run is read, a killed one is resumed, a
missing one is trained.

FID here is computed on the features of a small CNN classifier trained on the
dataset (``jaxwvae.evaluation.classifier.feature_params``), not on InceptionV3's: the
numbers are not on the paper's scale, so the tables compare rankings and
ratios. With ``inception_weights`` (pytorch-fid's ``pt_inception-2015-12-05``
file) the Inception scale is used instead.

Every cell carries :func:`jaxwvae.core.stats.summary` (n, mean, sd, 95 % Student-t
interval) and every ranking the paper claims gets :func:`jaxwvae.core.stats.compare`
(one-sided Welch's t and Mann–Whitney U) under ``"tests"`` in the JSON and below
the markdown table. A number read from a run's JSON may be ``None`` (written for
NaN): it counts as missing, like NaN.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import statistics
import time

import jax
import numpy as np

from jaxwvae import data
from jaxwvae.config import SweepConfig, grid, paper_mnist
from jaxwvae.core import exclusion, stats
from jaxwvae.data import augment as augmentation
from jaxwvae.engine import sweep
from jaxwvae.errors import UserError
from jaxwvae.evaluation import classifier, fid, generate
from jaxwvae.reports import paper, plots
from jaxwvae.runs import rundir

FID_SAMPLES = 10_000
REPLICA_GROUP = 10  # replicas decoded at once (10 x 10,000 float32 images = 314 MB)
# Fields that change where or how often a run is saved, not what it computes.
RUNTIME_FIELDS = ("data_dir", "steps_per_call", "checkpoint_every", "replica_loop")


def variant_config(dataset: str, variant: paper.Variant, common: dict) -> SweepConfig:
    """The paper's setting for ``dataset`` with the variant's fields and the command's common flags."""
    return paper_mnist(dataset=dataset, **variant.fields, **common).resolved()


def run_variant(config: SweepConfig, out: pathlib.Path, *, progress: bool = True) -> dict:
    """Results of the sweep in ``out``: read if finished, resumed if killed, trained if absent.

    Every run is classified again by the current ``jaxwvae.core.exclusion`` criteria (a finished sweep
    keeps the reasons of the version that wrote it).
    """
    if (out / rundir.CONFIG).exists():
        saved = SweepConfig.from_json(rundir.read_json(out / rundir.CONFIG)["config"])
        config = dataclasses.replace(config, **{f: getattr(saved, f) for f in RUNTIME_FIELDS})
        results = sweep.run(config, out, resume=True, progress=progress)
    else:
        results = sweep.run(config, out, progress=progress)
    for r in results["runs"]:
        r["excluded"], r["reason"] = exclusion.classify(r)
    return results


def mean_sd(values) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count of the finite values; NaN for none.

    ``None``, NaN and ±inf are left out. :func:`jaxwvae.core.stats.summary` gives the interval as well.
    """
    values = stats.finite(values).tolist()
    if not values:
        return float("nan"), float("nan"), 0
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), sd, len(values)


def fmt(mean: float, sd: float) -> str:
    return "–" if mean != mean else f"{mean:.1f} ({sd:.1f})"


# ---------------------------------------------------------------------- FID per replica
def test_feature_stats(dataset: str, data_dir, feature_fn, n: int):
    """Mean and covariance of the features of the first ``n`` test images."""
    test_images, _ = data.load(dataset, "test", data_dir)
    return fid.feature_stats(feature_fn(test_images[:n]))


def feature_function(dataset: str, data_dir, inception_weights=None, feature_recipe: dict | None = None):
    """``(name, images_u8 [n, 28, 28] -> features [n, d])``: the CNN features, or Inception's with weights.

    ``feature_recipe`` (e.g. ``{"train_size": 2000, "epochs": 1}``) shrinks the CNN's training for tests;
    the name then records it, so FIDs of different feature networks are never mixed.
    """
    if inception_weights is not None:
        from jaxwvae.evaluation import inception

        variables = inception.load_weights(inception_weights)
        return "inception", lambda images: inception.inception_features(variables, images[..., None] / 255.0)
    recipe = feature_recipe or {}
    params = classifier.feature_params(dataset, data_dir, **recipe)
    name = "-".join([f"cnn-{classifier.FEATURE_RECIPE_VERSION}", *(f"{k}{v}" for k, v in sorted(recipe.items()))])
    return name, lambda images: classifier.features(params, images)


def replica_fids(out: pathlib.Path, feature_fn, feature_name: str, test_stats, n: int = FID_SAMPLES) -> list[float]:
    """FID of ``n`` prior samples of every replica against the test images (cached in ``fid_<features>.json``)."""
    cache = out / f"fid_{feature_name}.json"
    if cache.exists():
        stored = rundir.read_json(cache)
        if stored["n"] == n:
            return [rundir.number(v) for v in stored["fid"]]  # null: a replica without a finite FID
    config, model, params = generate.load_run(out)
    replica_seeds = grid.replica_seeds(config)
    values = []
    for start in range(0, len(replica_seeds), REPLICA_GROUP):
        seeds = replica_seeds[start:start + REPLICA_GROUP]
        group = jax.tree_util.tree_map(lambda x: x[start:start + len(seeds)], params)
        images = generate.to_uint8(generate.sample_prior(model, group, seeds, n))  # vmapped over the group
        values += [fid.frechet_distance(*fid.feature_stats(feature_fn(one)), *test_stats) for one in images]
    rundir.write_json(cache, {"n": n, "features": feature_name, "seeds": replica_seeds, "fid": values})
    return values


def _one_replica(params, r):
    """Replica ``r``'s parameters, keeping a leading axis of 1."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[r:r + 1], params)


# ---------------------------------------------------------------------- Table 1
def table1(out: pathlib.Path, common: dict, *, datasets=("mnist", "fashion_mnist"), inception_weights=None,
           fid_samples: int = FID_SAMPLES, feature_recipe: dict | None = None, progress: bool = True) -> dict:
    """Run or read every sweep of Table 1, compute FIDs, write ``table1.md``, ``table1.json`` and pictures."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for dataset in datasets:
        feature_name, feature_fn = feature_function(dataset, common.get("data_dir"), inception_weights, feature_recipe)
        test_stats = test_feature_stats(dataset, common.get("data_dir"), feature_fn, fid_samples)
        for variant in paper.VARIANTS[dataset]:
            run_dir = out / f"{dataset}_{variant.name}"
            results = run_variant(variant_config(dataset, variant, common), run_dir, progress=progress)
            fids = replica_fids(run_dir, feature_fn, feature_name, test_stats, fid_samples)
            runs = results["runs"]
            kept = [f for f, r in zip(fids, runs) if not r["excluded"]]
            m_all, sd_all, n_all = mean_sd(fids)
            m_kept, sd_kept, n_kept = mean_sd(kept)
            rows.append({
                "dataset": dataset, "variant": variant.name, "label": variant.label,
                "fid_all": [m_all, sd_all, n_all], "fid_kept": [m_kept, sd_kept, n_kept],
                "fid_all_summary": stats.summary(fids), "fid_kept_summary": stats.summary(kept),
                "paper": paper.TABLE1.get((dataset, variant.paper_key)) if variant.paper_key else None,
                "fid_per_seed": dict(zip(map(str, results["config"]["seeds"]), fids)),
                "excluded": {str(r["seed"]): r["reason"] for r in runs if r["excluded"]},
                "train_s": results["timing"]["train_s"], "device": results["device"],
                "run": str(run_dir),
            })
        write_pictures(out, dataset, [r for r in rows if r["dataset"] == dataset], common.get("data_dir"))
    report = {"features": feature_name, "fid_samples": fid_samples, "rows": rows,
              "ratios": fid_ratios(rows), "tests": table1_tests(rows)}
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
    ``claim`` (labels), and :func:`jaxwvae.core.stats.compare` of A's per-seed FIDs against B's with
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
        lines += ["", "Excluded runs (jaxwvae.core.exclusion):", ""]
        lines += [f"- {d}, {label}, seed {seed}: {why}" for d, label, seed, why in excluded]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- pictures
def write_pictures(out: pathlib.Path, dataset: str, rows: list[dict], data_dir) -> None:
    """Samples of each objective's median-FID seed; Figure 5: originals beside ELBO_W and ELBO_KL reconstructions."""
    samples, recons = {}, {}
    originals, _ = data.load(dataset, "test", data_dir)
    originals = originals[:32]
    for row in rows:
        fids = row["fid_per_seed"]
        finite = sorted((s for s, v in fids.items() if len(stats.finite([v])) == 1), key=fids.get)
        pool = finite or list(fids)  # no finite FID: any seed shows what the objective made
        seed = pool[len(pool) // 2]
        config, model, params = generate.load_run(pathlib.Path(row["run"]))
        one = _one_replica(params, list(config.seeds).index(int(seed)))
        value = fids[seed]
        label = f"{row['label']}, seed {seed} (FID {'–' if value is None else f'{value:.1f}'})"
        samples[label] = generate.to_uint8(generate.sample_prior(model, one, [int(seed)], 64))[0]
        if row["variant"] in ("w", "w_fixed", "kl"):
            recons[label] = generate.to_uint8(generate.reconstruct(model, one, originals))[0]
    plots.write_image_panels(out / f"samples_{dataset}.png", samples, cols=8,
                             title=f"{dataset}: 64 samples from the prior of the median-FID seed of each objective")
    if recons:
        plots.write_image_panels(out / f"figure5_{dataset}.png", {"test images": originals, **recons}, cols=4,
                                 title=f"{dataset}: test images and their reconstructions (decoder mean at z = μ)")


# ---------------------------------------------------------------------- Table 3
def table3(out: pathlib.Path, common: dict, *, dataset: str = "mnist", progress: bool = True) -> dict:
    """Mean training loss over seeds at the paper's iterations, ELBO_KL and ELBO_W; ``table3.md``/``.json``.

    Per row and iteration: ``per_image`` / ``per_batch`` (the means), ``per_image_summary`` /
    ``per_batch_summary`` (:func:`jaxwvae.core.stats.summary`) and ``per_image_per_seed`` (``None`` where a
    seed's loss is not finite). ``tests``: :func:`table3_tests`.
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant in paper.VARIANTS[dataset]:
        if variant.name not in ("kl", "w", "w_fixed"):
            continue
        run_dir = out / f"{dataset}_{variant.name}"
        results = run_variant(variant_config(dataset, variant, common), run_dir, progress=progress)
        with np.load(run_dir / rundir.HISTORY) as h:
            loss = h["loss"]
        rows.append(table3_row(variant, loss, results["config"]["batch_size"]))
    report = {"dataset": dataset, "rows": rows, "tests": table3_tests(rows)}
    rundir.write_json(out / "table3.json", report)
    rundir.atomic_write_bytes(out / "table3.md", table3_markdown(report).encode())
    return report


def table3_row(variant: paper.Variant, loss: np.ndarray, batch: int) -> dict:
    """One row of Table 3 from a sweep's per-step losses ``[seeds, steps]`` (per image)."""
    steps = [s for s in paper.TABLE3_STEPS if s <= loss.shape[1]]
    per_seed = {s: [float(v) if np.isfinite(v) else None for v in loss[:, s - 1]] for s in steps}
    per_image = {s: stats.summary(v) for s, v in per_seed.items()}
    per_batch = {s: stats.summary([None if v is None else v * batch for v in vs]) for s, vs in per_seed.items()}
    return {"variant": variant.name, "label": variant.label,
            "per_image": {s: v["mean"] for s, v in per_image.items()},
            "per_batch": {s: v["mean"] for s, v in per_batch.items()},
            "per_image_summary": per_image, "per_batch_summary": per_batch, "per_image_per_seed": per_seed,
            "paper_per_batch": paper.TABLE3.get(variant.paper_key, {}), "seeds": loss.shape[0],
            "batch_size": batch}


def table3_tests(rows: list[dict]) -> list[dict]:
    """Per iteration, the paper's claim "ELBO_W's loss < ELBO_KL's", one-sided, for each ELBO_W row.

    Each entry: ``step``, ``lower`` (``w`` or ``w_fixed``), ``higher`` (``kl``), ``claim`` and
    :func:`jaxwvae.core.stats.compare` of the per-seed losses per image with ``alternative="less"``
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


# ---------------------------------------------------------------------- Table 2
TABLE2_SIZES = (10_000, 20_000, 60_000)
TABLE2_AUGMENT = 10_000
TABLE2_TEST_SIZE = 3_000
TABLE2_SEEDS = 3  # classifier seeds per cell
TABLE2_CONDITIONS = ("original", "kl", "w", "w_fixed")  # paper.TABLE2's columns, then ELBO_W at λ = 1
TABLE2_PAPER = ("original", "kl", "w")
TABLE2_NAMES = {"original": "original", "kl": "+ ELBO_KL", "w": "+ ELBO_W", "w_fixed": "+ ELBO_W (λ = 1)"}


def best_replica(fids: list[float], runs: list[dict]) -> int:
    """Index of the lowest finite-FID replica among those not excluded (among all if every one is)."""
    ok = [len(stats.finite([f])) == 1 for f in fids]  # None (JSON null), NaN and inf are missing
    kept = [i for i, r in enumerate(runs) if not r["excluded"] and ok[i]]
    pool = kept or [i for i in range(len(fids)) if ok[i]]
    if not pool:
        raise UserError("no replica of the sweep has a finite FID: nothing to reconstruct with")
    return min(pool, key=lambda i: fids[i])


def table2(out: pathlib.Path, common: dict, *, datasets=("mnist", "fashion_mnist"), sizes=TABLE2_SIZES,
           augment: int = TABLE2_AUGMENT, test_size: int = TABLE2_TEST_SIZE, source: str = "originals",
           classifier_seeds: int = TABLE2_SEEDS, classifier_epochs: int = classifier.TABLE2_EPOCHS,
           classifier_steps: int | None = None, inception_weights=None, fid_samples: int = FID_SAMPLES,
           feature_recipe: dict | None = None,
           progress: bool = True) -> dict:
    """Classifier accuracy on real and real + reconstructed images; ``table2.md``/``.json`` in ``out``.

    The ELBO_W (adaptive λ), ELBO_W (λ = 1) and ELBO_KL sweeps are run or read under ``out`` as
    for Table 1, and each one's best seed by FID (over/underfit runs left out unless all are)
    reconstructs the images that :func:`jaxwvae.data.augment.plan` picks. Every cell trains
    ``classifier_seeds`` CNNs at once, for ``classifier_epochs`` epochs (so a larger set gets more
    steps, as in the paper) or, given ``classifier_steps``, for that many steps in every cell.
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = common.get("data_dir")
    seeds = np.arange(classifier_seeds)
    batch = classifier.BATCH_SIZE
    rows, models = [], {}
    for dataset in datasets:
        train_x, train_y = data.load(dataset, "train", data_dir)
        test_x, test_y = data.load(dataset, "test", data_dir)
        split = augmentation.plan(len(train_x), len(test_x), sizes, augment, test_size, source=source)
        feature_name, feature_fn = feature_function(dataset, data_dir, inception_weights, feature_recipe)
        test_stats = test_feature_stats(dataset, data_dir, feature_fn, fid_samples)
        recons = {}
        for variant in paper.VARIANTS[dataset]:
            if variant.name not in TABLE2_CONDITIONS:
                continue
            run_dir = out / f"{dataset}_{variant.name}"
            results = run_variant(variant_config(dataset, variant, common), run_dir, progress=progress)
            fids = replica_fids(run_dir, feature_fn, feature_name, test_stats, fid_samples)
            r = best_replica(fids, results["runs"])
            config, model, params = generate.load_run(run_dir)
            recons[variant.name] = generate.to_uint8(
                generate.reconstruct(model, _one_replica(params, r), train_x[split.reconstructed]))[0]
            models[f"{dataset}_{variant.name}"] = {"seed": int(config.seeds[r]), "fid": fids[r],
                                                   "features": feature_name}
        for size in sorted(split.originals):
            cells = {}
            for condition in ("original", *(c for c in TABLE2_CONDITIONS if c in recons)):
                x, y = augmentation.merge(train_x, train_y, split.originals[size], split.reconstructed,
                                     recons.get(condition))
                start = time.perf_counter()
                budget = {"steps": classifier_steps} if classifier_steps else {"epochs": classifier_epochs}
                params = classifier.train(seeds, x, y, **budget)
                acc = 100.0 * classifier.accuracy(params, test_x[split.test], test_y[split.test])
                m, sd, n = mean_sd(acc.tolist())
                cells[condition] = {"mean": m, "sd": sd, "n": n, "summary": stats.summary(acc.tolist()),
                                    "per_seed": acc.tolist(), "train_images": len(x),
                                    "steps": classifier_steps or classifier_epochs * -(-len(x) // batch),
                                    "train_s": time.perf_counter() - start}
            rows.append({"dataset": dataset, "size": size, "cells": cells, "tests": table2_tests(cells),
                         "paper": paper.TABLE2.get(size) if dataset == "mnist" else None})
    report = {"augment": augment, "source": source, "test_size": test_size, "classifier_seeds": classifier_seeds,
              "classifier_epochs": None if classifier_steps else classifier_epochs,
              "classifier_steps": classifier_steps, "batch_size": classifier.BATCH_SIZE,
              "learning_rate": classifier.LEARNING_RATE,
              "models": models, "rows": rows, "device": jax.devices()[0].device_kind}
    rundir.write_json(out / "table2.json", report)
    rundir.atomic_write_bytes(out / "table2.md", table2_markdown(report).encode())
    return report


def table2_tests(cells: dict) -> list[dict]:
    """The paper's claim per row, "augmented > original" in accuracy, one-sided for each augmented condition.

    Each entry: ``condition``, ``claim`` and :func:`jaxwvae.core.stats.compare` of the condition's per-seed
    accuracies against the original set's with ``alternative="greater"``. The samples are the classifier
    seeds of one cell (3 by default), on one VAE seed's reconstructions: the tests see only the classifiers'
    seed-to-seed spread, and with n = 3 against 3 Mann–Whitney's one-sided p cannot go below 1/20.
    """
    if "original" not in cells:
        return []
    return [{"condition": c, "claim": f"{TABLE2_NAMES[c]} > original",
             **stats.compare(cells[c]["per_seed"], cells["original"]["per_seed"], alternative="greater")}
            for c in TABLE2_CONDITIONS if c != "original" and c in cells]


def table2_markdown(report: dict) -> str:
    names = TABLE2_NAMES
    best = ", ".join(f"{k} seed {v['seed']}" for k, v in report["models"].items())
    source = ("reconstructions of images inside the original set" if report["source"] == "originals" else
              "reconstructions of training images outside every original set")
    budget = (f"{report['classifier_steps']} steps in every cell" if report.get("classifier_steps") else
              f"{report['classifier_epochs']} epoch(s), so larger sets get more steps")
    lines = [f"Test accuracy (%) of a 3-layer CNN on {report['test_size']} test images, mean (sd) "
             f"[95 % Student-t interval on the mean] n over {report['classifier_seeds']} classifier seeds; "
             f"{budget}; Adam (lr {report['learning_rate']}, batch {report['batch_size']}). "
             f"Augmentation: {report['augment']} {source}, by the best-FID seed of each objective ({best}). "
             f"The paper's values are for MNIST.", "",
             "| dataset | originals | " + " | ".join(names[c] for c in TABLE2_CONDITIONS) + " | paper: "
             + " / ".join(names[c] for c in TABLE2_PAPER) + " |",
             "|" + "---|" * (len(TABLE2_CONDITIONS) + 3)]
    for r in report["rows"]:
        cells = [stats.format_summary(r["cells"][c].get("summary") or stats.summary(r["cells"][c]["per_seed"]))
                 if c in r["cells"] else "–" for c in TABLE2_CONDITIONS]
        theirs = " / ".join(f"{r['paper'][c]:.1f}" for c in TABLE2_PAPER) if r["paper"] else "–"
        lines.append(f"| {r['dataset']} | {r['size']} | " + " | ".join(cells) + f" | {theirs} |")
    tests = [{**t, "dataset": r["dataset"], "size": r["size"]} for r in report["rows"] for t in r.get("tests", [])]
    if tests:
        n = report["classifier_seeds"]
        lines += ["", f"The paper's claim, augmented above original, tested one-sided per row and condition "
                  f"(small p supports it). n is the {n} classifier seeds of a cell, all trained on the same "
                  f"reconstructions of one VAE seed: a small sample that sees only the classifiers' spread "
                  f"(with {n} against {n} the one-sided Mann–Whitney p is at least 1/{math.comb(2 * n, n)}). "
                  + TESTS_NOTE, ""]
        lines += tests_markdown(tests, [("dataset", "dataset"), ("originals", "size")])
    return "\n".join(lines) + "\n"
