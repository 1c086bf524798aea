"""experiments/table1.py and table3.py on a CPU-sized run: 2 seeds, 1 epoch of 100 batches of 10 images."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from jaxwvae import paper

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
    text = (out / "table1.md").read_text()
    assert "NOT the paper's Inception scale" in text and "23.1 (2.5)" in text
    assert "| mnist | ELBO_KL / ELBO_W (adaptive λ) |" in text and "| mnist | ELBO_KL / ELBO_W (λ = 1 fixed) |" in text
    ratios = {r["ratio"]: r for r in report["ratios"]}
    ours = ratios["WAE-MMD (λ = 10) / ELBO_W (λ = 1 fixed)"]["ours"]
    assert ours == pytest.approx(rows["wae"]["fid_all"][0] / rows["w_fixed"]["fid_all"][0])
    assert ratios["ELBO_KL / ELBO_W (λ = 1 fixed)"]["paper"] == pytest.approx(81.7 / 23.1)
    for name in ("samples_mnist.png", "figure5_mnist.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


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
        np.testing.assert_allclose(row["per_image"]["100"], expected, rtol=1e-6)
        np.testing.assert_allclose(row["per_batch"]["100"], 10 * expected, rtol=1e-6)
    text = (out / "table3.md").read_text()
    assert "| 1000 | – | – | – | 18753 | 8240 |" in text


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
