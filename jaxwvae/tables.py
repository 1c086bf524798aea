"""The paper's Tables 1 and 3 from sweeps of this library, beside the paper's values.

``experiments/table1.py`` and ``experiments/table3.py`` call :func:`table1` and
:func:`table3`. Each table row is one sweep (a run folder under the table's
``--out``): an existing finished run is read, a killed one is resumed, a
missing one is trained.

FID here is computed on the features of a small CNN classifier trained on the
dataset (``jaxwvae.classifier.feature_params``), not on InceptionV3's: the
numbers are not on the paper's scale, so the tables compare rankings and
ratios. With ``inception_weights`` (pytorch-fid's ``pt_inception-2015-12-05``
file) the Inception scale is used instead.
"""

from __future__ import annotations

import dataclasses
import pathlib
import statistics
import time

import jax
import numpy as np

from jaxwvae import augment as augmentation
from jaxwvae import classifier, data, fid, generate, paper, plots, rundir, sweep
from jaxwvae.config import SweepConfig, paper_mnist
from jaxwvae.errors import UserError

FID_SAMPLES = 10_000
REPLICA_GROUP = 10  # replicas decoded at once (10 x 10,000 float32 images = 314 MB)
# Fields that change where or how often a run is saved, not what it computes.
RUNTIME_FIELDS = ("data_dir", "steps_per_call", "checkpoint_every")


def variant_config(dataset: str, variant: paper.Variant, common: dict) -> SweepConfig:
    """The paper's setting for ``dataset`` with the variant's fields and the command's common flags."""
    return paper_mnist(dataset=dataset, **variant.fields, **common).resolved()


def run_variant(config: SweepConfig, out: pathlib.Path, *, progress: bool = True) -> dict:
    """Results of the sweep in ``out``: read if finished, resumed if killed, trained if absent."""
    if (out / rundir.CONFIG).exists():
        saved = SweepConfig.from_json(rundir.read_json(out / rundir.CONFIG)["config"])
        config = dataclasses.replace(config, **{f: getattr(saved, f) for f in RUNTIME_FIELDS})
        return sweep.run(config, out, resume=True, progress=progress)
    return sweep.run(config, out, progress=progress)


def mean_sd(values) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count; NaN for none."""
    values = [v for v in values if v == v]
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
        from jaxwvae import inception

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
    values = []
    for start in range(0, len(config.seeds), REPLICA_GROUP):
        seeds = config.seeds[start:start + REPLICA_GROUP]
        group = jax.tree_util.tree_map(lambda x: x[start:start + len(seeds)], params)
        images = generate.to_uint8(generate.sample_prior(model, group, seeds, n))  # vmapped over the group
        values += [fid.frechet_distance(*fid.feature_stats(feature_fn(one)), *test_stats) for one in images]
    rundir.write_json(cache, {"n": n, "features": feature_name, "seeds": list(config.seeds), "fid": values})
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
                "paper": paper.TABLE1.get((dataset, variant.paper_key)) if variant.paper_key else None,
                "fid_per_seed": dict(zip(map(str, results["config"]["seeds"]), fids)),
                "excluded": {str(r["seed"]): r["reason"] for r in runs if r["excluded"]},
                "train_s": results["timing"]["train_s"], "device": results["device"],
                "run": str(run_dir),
            })
        write_pictures(out, dataset, [r for r in rows if r["dataset"] == dataset], common.get("data_dir"))
    report = {"features": feature_name, "fid_samples": fid_samples, "rows": rows,
              "ratios": fid_ratios(rows)}
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
                            "ours": row["fid_all"][0] / by[base]["fid_all"][0], "paper": theirs})
    return out


def table1_markdown(report: dict) -> str:
    scale = ("Inception (pytorch-fid weights)" if report["features"] == "inception" else
             "a small CNN classifier's 128-d features (NOT the paper's Inception scale: compare rankings and ratios, "
             "not values)")
    lines = [f"FID of {report['fid_samples']} prior samples per seed against the test images, on {scale}.", "",
             "| dataset | objective | FID, all seeds | FID, over/underfit excluded | paper (Inception, 30 seeds) |",
             "|---|---|---|---|---|"]
    for r in report["rows"]:
        paper_value = fmt(*r["paper"]) if r["paper"] else "not in the paper"
        lines.append(f"| {r['dataset']} | {r['label']} | {fmt(*r['fid_all'][:2])} (n={r['fid_all'][2]}) | "
                     f"{fmt(*r['fid_kept'][:2])} (n={r['fid_kept'][2]}) | {paper_value} |")
    lines += ["", "FID ratios, all seeds (the paper's: its other objective over its ELBO_W, in both rows):", "",
              "| dataset | ratio | ours | paper |", "|---|---|---|---|"]
    for r in report["ratios"]:
        theirs = f"{r['paper']:.2f}" if r["paper"] else "–"
        lines.append(f"| {r['dataset']} | {r['ratio']} | {r['ours']:.2f} | {theirs} |")
    excluded = [(r["dataset"], r["label"], seed, why) for r in report["rows"] for seed, why in r["excluded"].items()]
    if excluded:
        lines += ["", "Excluded runs (jaxwvae.exclusion):", ""]
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
        seed = sorted(fids, key=fids.get)[len(fids) // 2]
        config, model, params = generate.load_run(pathlib.Path(row["run"]))
        one = _one_replica(params, list(config.seeds).index(int(seed)))
        label = f"{row['label']}, seed {seed} (FID {fids[seed]:.1f})"
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
    """Mean training loss over seeds at the paper's iterations, ELBO_KL and ELBO_W; ``table3.md``/``.json``."""
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
        steps = [s for s in paper.TABLE3_STEPS if s <= loss.shape[1]]
        batch = results["config"]["batch_size"]
        means = {s: float(np.nanmean(loss[:, s - 1])) for s in steps}
        rows.append({"variant": variant.name, "label": variant.label, "per_image": means,
                     "per_batch": {s: v * batch for s, v in means.items()},
                     "paper_per_batch": paper.TABLE3.get(variant.paper_key, {}), "seeds": loss.shape[0],
                     "batch_size": batch})
    report = {"dataset": dataset, "rows": rows}
    rundir.write_json(out / "table3.json", report)
    rundir.atomic_write_bytes(out / "table3.md", table3_markdown(report).encode())
    return report


def table3_markdown(report: dict) -> str:
    rows = report["rows"]
    batch = rows[0]["batch_size"] if rows else 100
    lines = [f"Mean training loss over seeds at iteration t (the batch at step t, before its update), "
             f"{report['dataset']}; summed over a batch of {batch} images like the paper "
             f"(per image in brackets). ELBO_W includes λ_t · W2².", ""]
    header = ("| iteration | " + " | ".join(f"{r['label']} (n={r['seeds']})" for r in rows)
              + " | paper ELBO_KL | paper ELBO_W |")
    lines += [header, "|" + "---|" * (len(rows) + 3)]
    for s in paper.TABLE3_STEPS:
        cells = [f"{r['per_batch'][s]:.0f} ({r['per_image'][s]:.1f})" if s in r["per_batch"] else "–" for r in rows]
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {paper.TABLE3['kl'][s]:.0f} | {paper.TABLE3['w'][s]:.0f} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- Table 2
TABLE2_SIZES = (10_000, 20_000, 60_000)
TABLE2_AUGMENT = 10_000
TABLE2_TEST_SIZE = 3_000
TABLE2_SEEDS = 3  # classifier seeds per cell
TABLE2_CONDITIONS = ("original", "kl", "w", "w_fixed")  # paper.TABLE2's columns, then ELBO_W at λ = 1
TABLE2_PAPER = ("original", "kl", "w")


def best_replica(fids: list[float], runs: list[dict]) -> int:
    """Index of the lowest-FID replica among those not excluded (among all if every one is)."""
    kept = [i for i, r in enumerate(runs) if not r["excluded"] and fids[i] == fids[i]]
    pool = kept or [i for i, f in enumerate(fids) if f == f]
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
    reconstructs the images that :func:`jaxwvae.augment.plan` picks. Every cell trains
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
                cells[condition] = {"mean": m, "sd": sd, "n": n, "per_seed": acc.tolist(), "train_images": len(x),
                                    "steps": classifier_steps or classifier_epochs * -(-len(x) // batch),
                                    "train_s": time.perf_counter() - start}
            rows.append({"dataset": dataset, "size": size, "cells": cells,
                         "paper": paper.TABLE2.get(size) if dataset == "mnist" else None})
    report = {"augment": augment, "source": source, "test_size": test_size, "classifier_seeds": classifier_seeds,
              "classifier_epochs": None if classifier_steps else classifier_epochs,
              "classifier_steps": classifier_steps, "batch_size": classifier.BATCH_SIZE,
              "learning_rate": classifier.LEARNING_RATE,
              "models": models, "rows": rows, "device": jax.devices()[0].device_kind}
    rundir.write_json(out / "table2.json", report)
    rundir.atomic_write_bytes(out / "table2.md", table2_markdown(report).encode())
    return report


def table2_markdown(report: dict) -> str:
    names = {"original": "original", "kl": "+ ELBO_KL", "w": "+ ELBO_W", "w_fixed": "+ ELBO_W (λ = 1)"}
    best = ", ".join(f"{k} seed {v['seed']}" for k, v in report["models"].items())
    source = ("reconstructions of images inside the original set" if report["source"] == "originals" else
              "reconstructions of training images outside every original set")
    budget = (f"{report['classifier_steps']} steps in every cell" if report.get("classifier_steps") else
              f"{report['classifier_epochs']} epoch(s), so larger sets get more steps")
    lines = [f"Test accuracy (%) of a 3-layer CNN on {report['test_size']} test images, mean (sd) over "
             f"{report['classifier_seeds']} classifier seeds; {budget}; Adam "
             f"(lr {report['learning_rate']}, batch {report['batch_size']}). Augmentation: {report['augment']} "
             f"{source}, by the best-FID seed of each objective "
             f"({best}). "
             f"The paper's values are for MNIST.", "",
             "| dataset | originals | " + " | ".join(names[c] for c in TABLE2_CONDITIONS) + " | paper: "
             + " / ".join(names[c] for c in TABLE2_PAPER) + " |",
             "|" + "---|" * (len(TABLE2_CONDITIONS) + 3)]
    for r in report["rows"]:
        cells = [f"{r['cells'][c]['mean']:.1f} ({r['cells'][c]['sd']:.1f})" if c in r["cells"] else "–"
                 for c in TABLE2_CONDITIONS]
        theirs = " / ".join(f"{r['paper'][c]:.1f}" for c in TABLE2_PAPER) if r["paper"] else "–"
        lines.append(f"| {r['dataset']} | {r['size']} | " + " | ".join(cells) + f" | {theirs} |")
    return "\n".join(lines) + "\n"
