"""The paper's Table 2: accuracy of a small CNN trained on real images, and on real + reconstructed ones.

``experiments/table2.py`` calls :func:`table2`. The reconstructions come from the
best-FID seed of each objective's sweep (the sweeps of Table 1); the CNNs of a
cell are trained for several classifier seeds at once, and each claim
"augmented > original" is tested one-sided (:func:`jaxwvae.reports.stats.compare`).
"""

from __future__ import annotations

import math
import pathlib
import time

import jax
import numpy as np

from jaxwvae import data
from jaxwvae.data import augment as augmentation
from jaxwvae.errors import UserError
from jaxwvae.evaluation import classifier, generate
from jaxwvae.evaluation.replica_fid import FID_SAMPLES, FidScorer
from jaxwvae.reports import cells, paper, stats
from jaxwvae.reports.shared import TESTS_NOTE, mean_sd, tests_markdown, variant_config
from jaxwvae.runs import rundir

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
           feature_recipe: dict | None = None, pool=(), progress: bool = True) -> dict:
    """Classifier accuracy on real and real + reconstructed images; ``table2.md``/``.json`` in ``out``.

    The ELBO_W (adaptive λ), ELBO_W (λ = 1) and ELBO_KL sweeps are run or read under ``out`` as
    for Table 1 (pooled with ``pool``'s, :func:`jaxwvae.reports.cells.cell`), and each one's best seed
    by FID (over/underfit runs left out unless all are) reconstructs the images that :func:`jaxwvae.data.augment.plan` picks. Every cell trains
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
        scorer = FidScorer(dataset, data_dir, inception_weights, feature_recipe, fid_samples)
        recons = {}
        for variant in paper.VARIANTS[dataset]:
            if variant.name not in TABLE2_CONDITIONS:
                continue
            name = f"{dataset}_{variant.name}"
            c = cells.cell(variant_config(dataset, variant, common), out / name,
                           [pathlib.Path(p) / name for p in pool], progress=progress)
            fids = c.fids(scorer)
            r = best_replica(fids, c.runs)
            model, params = c.parameters(r)
            recons[variant.name] = generate.to_uint8(
                generate.reconstruct(model, params, train_x[split.reconstructed]))[0]
            models[name] = {"seed": int(c.seeds[r]), "fid": fids[r], "features": scorer.name,
                            "of_seeds": len(c.seeds)}
        for size in sorted(split.originals):
            conditions = {}
            for condition in ("original", *(c for c in TABLE2_CONDITIONS if c in recons)):
                x, y = augmentation.merge(train_x, train_y, split.originals[size], split.reconstructed,
                                     recons.get(condition))
                start = time.perf_counter()
                budget = {"steps": classifier_steps} if classifier_steps else {"epochs": classifier_epochs}
                params = classifier.train(seeds, x, y, **budget)
                acc = 100.0 * classifier.accuracy(params, test_x[split.test], test_y[split.test])
                m, sd, n = mean_sd(acc.tolist())
                conditions[condition] = {"mean": m, "sd": sd, "n": n, "summary": stats.summary(acc.tolist()),
                                         "per_seed": acc.tolist(), "train_images": len(x),
                                         "steps": classifier_steps or classifier_epochs * -(-len(x) // batch),
                                         "train_s": time.perf_counter() - start}
            rows.append({"dataset": dataset, "size": size, "cells": conditions, "tests": table2_tests(conditions),
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

    Each entry: ``condition``, ``claim`` and :func:`jaxwvae.reports.stats.compare` of the condition's per-seed
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
