"""experiments/table1.py and table3.py on a CPU-sized run: 2 seeds, 1 epoch of 100 batches of 10 images."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from jaxwvae.reports import paper, stats, table1, table2, table3
from jaxwvae.reports.shared import mean_sd

REPO = pathlib.Path(__file__).resolve().parents[1]
COMMON = ["--seeds", "2", "--epochs", "1", "--train-size", "1000", "--batch-size", "10", "--test-size", "500",
          "--no-progress"]


@pytest.fixture(scope="module")
def table1_out(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("table1")
    cache = tmp_path_factory.mktemp("cache")
    proc = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "table1.py"), *COMMON, "--data-dir", str(data_dir), "--out",
         str(out), "--datasets", "mnist", "--fid-samples", "500", "--feature-train-size", "2000",
         "--feature-epochs", "1"],
        capture_output=True, text=True, timeout=900, env={**__import__("os").environ, "JAXWVAE_CACHE_DIR": str(cache)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


@pytest.mark.slow  # experiments/table1.py end to end
def test_table1_has_every_row_beside_the_paper(table1_out):
    out, stdout = table1_out
    report = json.loads((out / "table1.json").read_text())
    rows = {r["variant"]: r for r in report["rows"]}
    assert set(rows) == {v.name for v in paper.VARIANTS["mnist"]}
    assert rows["w"]["paper"] == [23.1, 2.5] and rows["kl"]["paper"] == [81.7, 4.3]
    assert rows["wae"]["paper"] == [56.6, 3.5] and rows["w_fixed"]["paper"] is None
    for r in rows.values():
        assert r["fid_all"][2] == 2 and all(v > 0 for v in r["fid_per_seed"].values())
        assert r["fid_kept"][2] == 2 - len(r["excluded"])
        assert r["fid_all_summary"]["n"] == 2 and r["fid_kept_summary"]["n"] == r["fid_kept"][2]
        assert r["fid_all_summary"]["ci_low"] <= r["fid_all"][0] <= r["fid_all_summary"]["ci_high"]
    no_nan([report["tests"], [r["fid_all_summary"] for r in rows.values()]])
    claims = {(t["lower"], t["higher"], t["seeds"]) for t in report["tests"]}
    assert ("w", "wae", "all") in claims and ("w_fixed", "kl", "kept") in claims and len(claims) == 10
    text = (out / "table1.md").read_text()
    assert "NOT the paper's Inception scale" in text and "23.1 (2.5)" in text
    assert "| mnist | ELBO_KL / ELBO_W (adaptive λ) |" in text and "| mnist | ELBO_KL / ELBO_W (λ = 1 fixed) |" in text
    ratios = {r["ratio"]: r for r in report["ratios"]}
    ours = ratios["WAE-MMD (λ = 10) / ELBO_W (λ = 1 fixed)"]["ours"]
    # the same float64 division, read back from JSON: approx's default 1e-6 relative covers round-off
    assert ours == pytest.approx(rows["wae"]["fid_all"][0] / rows["w_fixed"]["fid_all"][0])
    assert ratios["ELBO_KL / ELBO_W (λ = 1 fixed)"]["paper"] == pytest.approx(81.7 / 23.1)
    for name in ("samples_mnist.png", "figure5_mnist.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow  # experiments/table1.py end to end
def test_table1_reads_finished_runs_without_training(table1_out, data_dir):
    out, _ = table1_out
    before = {p: p.stat().st_mtime_ns for p in out.glob("mnist_*/results.json")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "table1.py"), *COMMON, "--data-dir", str(data_dir), "--out",
         str(out), "--datasets", "mnist", "--fid-samples", "500", "--feature-train-size", "2000",
         "--feature-epochs", "1"], capture_output=True, text=True, timeout=600,
        env={**__import__("os").environ, "JAXWVAE_CACHE_DIR": str(out / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert before == {p: p.stat().st_mtime_ns for p in out.glob("mnist_*/results.json")}


@pytest.mark.slow  # experiments/table1.py and table3.py end to end
def test_table3_reads_the_same_sweeps(table1_out, data_dir):
    out, _ = table1_out
    proc = subprocess.run([sys.executable, str(REPO / "experiments" / "table3.py"), *COMMON, "--data-dir",
                           str(data_dir), "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "table3.json").read_text())
    rows = {r["variant"]: r for r in report["rows"]}
    assert set(rows) == {"w", "w_fixed", "kl"}
    for name, row in rows.items():
        with np.load(out / f"mnist_{name}" / "history.npz") as h:
            expected = float(np.mean(h["loss"][:, 99]))  # iteration 100 is the 100th step
        assert list(row["per_image"]) == ["100"]  # 100 steps in all: the later iterations are not invented
        # a mean of 2 float32 losses, recomputed in float64 and written to JSON: float32 round-off
        np.testing.assert_allclose(row["per_image"]["100"], expected, rtol=1e-6)
        np.testing.assert_allclose(row["per_batch"]["100"], 10 * expected, rtol=1e-6)
        assert row["per_image_summary"]["100"]["n"] == len(row["per_image_per_seed"]["100"]) == 2
    assert {(t["step"], t["lower"]) for t in report["tests"]} == {(100, "w"), (100, "w_fixed")}
    no_nan(report["tests"])
    text = (out / "table3.md").read_text()
    assert "| 1000 | – | – | – | 18753 | 8240 |" in text and "Welch's t" in text


# ---------------------------------------------------------------------- statistics, on made-up rows (no training)
def fid_row(variant, fids, excluded=(), dataset="mnist"):
    label = {v.name: v.label for v in paper.VARIANTS[dataset]}[variant]
    per_seed = {str(i): f for i, f in enumerate(fids)}
    kept = [f for s, f in per_seed.items() if s not in excluded]
    return {"dataset": dataset, "variant": variant, "label": label, "fid_all": list(mean_sd(fids)),
            "fid_kept": list(mean_sd(kept)), "fid_all_summary": stats.summary(fids),
            "fid_kept_summary": stats.summary(kept), "paper": None, "fid_per_seed": per_seed,
            "excluded": {s: "underfit" for s in excluded}}


def no_nan(obj):
    """``obj`` through JSON with NaN and inf refused, as the tables' JSON must be."""
    return json.loads(json.dumps(obj, allow_nan=False))


def test_table1_tests_every_claimed_pair_for_both_elbo_w_rows():
    rng = np.random.default_rng(0)
    rows = [fid_row("w", list(rng.normal(20, 1, 10))), fid_row("w_fixed", list(rng.normal(20, 1, 10))),
            fid_row("kl", list(rng.normal(80, 4, 10)), excluded=("3",)),
            fid_row("wae", [*rng.normal(50, 3, 9), None])]  # a missing FID (JSON null) is left out
    tests = no_nan(table1.table1_tests(rows))
    pairs = {(t["lower"], t["higher"], t["seeds"]): t for t in tests}
    assert set(pairs) == {(a, b, s) for a, b in table1.TABLE1_CLAIMS for s in ("all", "kept")}
    # means >= 30 apart with sd <= 4: Welch's p is far below 1e-6; exact MW's floor on 9-10 seeds a side is
    # 1 / C(n_a + n_b, n_a) <= 1.1e-5
    for t in tests:
        assert t["alternative"] == "less" and t["welch"]["p"] < 1e-6 and t["mann_whitney"]["p"] < 1e-4
    assert pairs[("wae", "kl", "all")]["n_a"] == 9 and pairs[("wae", "kl", "kept")]["n_b"] == 9
    report = {"features": "cnn", "fid_samples": 100, "rows": rows, "ratios": table1.fid_ratios(rows), "tests": tests}
    text = table1.table1_markdown(report)
    assert "| mnist | all | ELBO_W (λ = 1 fixed) < WAE-MMD (λ = 10) | 10, 9 |" in text
    assert "95 % Student-t interval" in text and "Welch's t" in text and "Mann–Whitney U" in text
    assert f"{stats.format_summary(rows[2]['fid_kept_summary'])} |" in text and "n=9" in text


def test_table1_tests_of_identical_rows_give_large_p():
    fids = list(np.random.default_rng(1).normal(30, 2, 8))
    tests = table1.table1_tests([fid_row("w", fids), fid_row("kl", fids)])
    for t in tests:  # identical samples: t = 0, p = 0.5 up to float64 round-off
        assert t["welch"]["p"] == pytest.approx(0.5) and t["mann_whitney"]["p"] > 0.4


def test_missing_fids_do_not_break_ratios_or_best_replica():
    rows = [fid_row("w", [None, None]), fid_row("kl", [80.0, 82.0])]
    ratios = no_nan(table1.fid_ratios(rows))
    assert ratios[0]["ours"] is None
    assert table2.best_replica([None, 12.0, float("nan"), 11.0], [{"excluded": False}] * 4) == 3
    text = table1.table1_markdown({"features": "cnn", "fid_samples": 10, "rows": rows, "ratios": ratios,
                                   "tests": table1.table1_tests(rows)})
    assert "| mnist | ELBO_W (adaptive λ) | – | – |" in text and "2 or more finite values" in text


def table3_row(variant, per_seed, batch=10):
    label = {v.name: v.label for v in paper.VARIANTS["mnist"]}[variant]
    summ = {s: stats.summary(v) for s, v in per_seed.items()}
    return {"variant": variant, "label": label, "per_image": {s: v["mean"] for s, v in summ.items()},
            "per_batch": {s: v["mean"] * batch for s, v in summ.items()}, "per_image_summary": summ,
            "per_batch_summary": {s: stats.summary([x * batch for x in v]) for s, v in per_seed.items()},
            "per_image_per_seed": per_seed, "seeds": 5, "batch_size": batch}


def test_table3_tests_per_iteration():
    rows = [table3_row("w", {100: [100.0, 101.0, 99.0, 100.5, 99.5], 1000: [80.0, 81.0, 79.0, 80.5, 79.5]}),
            table3_row("kl", {100: [150.0, 151.0, 149.0, 150.5, 149.5], 1000: [80.0, 81.0, 79.0, 80.5, 79.5]})]
    tests = no_nan(table3.table3_tests(rows))
    by_step = {t["step"]: t for t in tests}
    assert [t["lower"] for t in tests] == ["w", "w"] and set(by_step) == {100, 1000}
    # 50 apart with sd ~0.8: Welch's p far below 1e-6; exact MW: 1 split of C(10, 5) = 252; equal rows: p = 0.5
    assert by_step[100]["welch"]["p"] < 1e-6 and by_step[100]["mann_whitney"]["p"] == pytest.approx(1 / 252)
    assert by_step[1000]["welch"]["p"] == pytest.approx(0.5) and by_step[1000]["mann_whitney"]["p"] > 0.4
    text = table3.table3_markdown({"dataset": "mnist", "rows": rows, "tests": tests})
    assert "| 100 | 1000 (8) [990, 1010] n=5; 100.0 per image |" in text
    assert "| 2000 | – | – | 14331 | 7769 |" in text and "| 100 | ELBO_W (adaptive λ) < ELBO_KL | 5, 5 |" in text


def test_table2_tests_augmented_against_original():
    cells = {"original": {"per_seed": [60.0, 61.0, 59.5]}, "w": {"per_seed": [80.0, 81.0, 79.0]},
             "kl": {"per_seed": [60.0, 61.0, 59.5]}}
    tests = {t["condition"]: t for t in no_nan(table2.table2_tests(cells))}
    assert set(tests) == {"w", "kl"} and tests["w"]["alternative"] == "greater"
    # 20 apart with sd ~1 on 3 seeds: Welch's p far below 1e-3; exact MW: 1 split of C(6, 3) = 20
    assert tests["w"]["welch"]["p"] < 1e-3 and tests["w"]["mann_whitney"]["p"] == pytest.approx(1 / 20)
    assert tests["kl"]["welch"]["p"] == pytest.approx(0.5) and tests["kl"]["mann_whitney"]["p"] > 0.4


@pytest.mark.slow  # experiments/table1.py end to end
def test_table1_writes_only_strict_json(table1_out):
    # fid_kept is empty (mean and sd undefined) when every seed of a row is excluded: null, never NaN.
    out, _ = table1_out

    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    files = sorted(out.rglob("*.json"))
    assert out / "table1.json" in files and any(p.name.startswith("fid_") for p in files)
    for path in files:
        json.loads(path.read_text(), parse_constant=reject)
    for row in json.loads((out / "table1.json").read_text())["rows"]:
        assert (row["fid_kept"][0] is None) == (row["fid_kept"][2] == 0)
