"""jaxwvae.data.augment (Table 2's training sets) and experiments/table2.py on a CPU-sized run."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from jaxwvae import data
from jaxwvae.data import augment
from jaxwvae.errors import UserError

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("source", augment.SOURCES)
def test_plan_sizes_nesting_and_overlap(source):
    p = augment.plan(60_000, 10_000, (20_000, 10_000, 40_000), 10_000, 3_000, source=source)
    assert sorted(p.originals) == [10_000, 20_000, 40_000]
    for size, idx in p.originals.items():
        assert len(idx) == size and len(np.unique(idx)) == size and idx.max() < 60_000
    # nested prefixes: a larger set holds every image of a smaller one
    assert set(p.originals[10_000]) <= set(p.originals[20_000]) <= set(p.originals[40_000])
    assert len(p.reconstructed) == 10_000 and len(np.unique(p.reconstructed)) == 10_000
    overlap = {s: len(np.intersect1d(idx, p.reconstructed)) for s, idx in p.originals.items()}
    if source == "originals":
        assert overlap == {s: 10_000 for s in p.originals}  # every reconstructed image is an original
    else:
        assert overlap == {s: 0 for s in p.originals}  # none is
    assert len(p.test) == 3_000 and len(np.unique(p.test)) == 3_000 and p.test.max() < 10_000


def test_plan_is_seeded():
    a, b = augment.plan(1000, 500, (100,), 50, 20), augment.plan(1000, 500, (100,), 50, 20)
    np.testing.assert_array_equal(a.originals[100], b.originals[100])
    np.testing.assert_array_equal(a.test, b.test)
    c = augment.plan(1000, 500, (100,), 50, 20, seed=1)
    assert not np.array_equal(a.originals[100], c.originals[100])


@pytest.mark.parametrize("kwargs, needle", [
    (dict(sizes=(70_000,)), "pass sizes up to 60000"),
    (dict(sizes=(0,)), "positive"),
    (dict(sizes=(5_000,), augment=10_000), "--augment 5000 or less"),
    (dict(sizes=(60_000,), source="others"), "--augment-source originals"),
    (dict(test_size=20_000), "--classifier-test-size"),
    (dict(source="nowhere"), "unknown --augment-source"),
])
def test_plan_rejects_impossible_requests(kwargs, needle):
    args = dict(sizes=(10_000,), augment=10_000, test_size=3_000, source="originals") | kwargs
    with pytest.raises(UserError, match=needle.replace("-", r"\-").replace("+", r"\+")):
        augment.plan(60_000, 10_000, args["sizes"], args["augment"], args["test_size"], source=args["source"])


def test_merge_keeps_labels_with_their_images(data_dir):
    images, labels = data.load("mnist", "train", data_dir)
    p = augment.plan(len(images), 10_000, (400,), 300, 100, source="others")
    fake = 255 - images[p.reconstructed]  # a "reconstruction" that can be traced back to its image
    x, y = augment.merge(images, labels, p.originals[400], p.reconstructed, fake)
    assert x.shape == (700, 28, 28) and y.shape == (700,) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:400], images[p.originals[400]])
    np.testing.assert_array_equal(y[:400], labels[p.originals[400]])
    for img, lab in zip(x[400:], y[400:]):  # find each reconstruction's source by content
        (src,) = np.flatnonzero((images == 255 - img).all(axis=(1, 2)))[:1]
        assert labels[src] == lab
    x0, y0 = augment.merge(images, labels, p.originals[400], p.reconstructed)
    assert len(x0) == len(y0) == 400
    with pytest.raises(ValueError, match="reconstructions must be"):
        augment.merge(images, labels, p.originals[400], p.reconstructed, fake[:10])


def test_no_test_image_in_any_training_set(data_dir):
    train, _ = data.load("mnist", "train", data_dir)
    test, _ = data.load("mnist", "test", data_dir)
    p = augment.plan(len(train), len(test), (2000,), 2000, 1000)
    x, _ = augment.merge(train, np.zeros(len(train), np.int64), p.originals[2000], p.reconstructed)
    seen = {im.tobytes() for im in x}
    assert not any(t.tobytes() in seen for t in test[p.test])


@pytest.fixture(scope="module")
def table2_out(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("table2")
    args = ["--seeds", "2", "--epochs", "1", "--train-size", "1000", "--batch-size", "10", "--no-progress",
            "--datasets", "mnist", "--sizes", "600,300", "--augment", "300", "--classifier-test-size", "500",
            "--classifier-seeds", "2", "--classifier-epochs", "8", "--fid-samples", "500",
            "--feature-train-size", "2000", "--feature-epochs", "1", "--data-dir", str(data_dir), "--out", str(out)]
    proc = subprocess.run([sys.executable, str(REPO / "experiments" / "table2.py"), *args], capture_output=True,
                          text=True, timeout=900, env={**os.environ, "JAXWVAE_CACHE_DIR": str(out / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


@pytest.mark.slow  # experiments/table2.py end to end
def test_table2_cells_sizes_and_accuracy(table2_out):
    out, stdout = table2_out
    report = json.loads((out / "table2.json").read_text())
    assert [r["size"] for r in report["rows"]] == [300, 600]
    for r in report["rows"]:
        assert r["paper"] is None  # the paper's values are for sizes 10,000 / 20,000 / 60,000
        assert r["cells"]["original"]["train_images"] == r["size"]
        assert {r["cells"][c]["train_images"] for c in ("kl", "w", "w_fixed")} == {r["size"] + 300}
        for cell in r["cells"].values():
            assert cell["n"] == 2 and len(cell["per_seed"]) == 2 and cell["summary"]["n"] == 2
            assert cell["mean"] > 40.0  # well above chance (10%) even on a few hundred images
        assert {t["condition"] for t in r["tests"]} == {"kl", "w", "w_fixed"}
        assert all(t["alternative"] == "greater" and t["n_a"] == t["n_b"] == 2 for t in r["tests"])
    models = report["models"]
    assert set(models) == {"mnist_w", "mnist_w_fixed", "mnist_kl"}
    for name, m in models.items():
        fids = json.loads(next((out / name).glob("fid_*.json")).read_text())["fid"]
        runs = json.loads((out / name / "results.json").read_text())["runs"]
        kept = [f for f, r in zip(fids, runs) if not r["excluded"]] or fids  # all excluded: best of all
        assert m["fid"] == min(kept) and m["seed"] == runs[fids.index(min(kept))]["seed"]
    text = (out / "table2.md").read_text()
    assert "| mnist | 300 |" in text and "+ ELBO_W" in text and text in stdout
    assert "| mnist | 300 | + ELBO_W > original | 2, 2 |" in text


@pytest.mark.slow  # an experiments/table2.py process
def test_table2_bad_request_is_one_line(data_dir, tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "experiments" / "table2.py"), "--sizes", "100",
                           "--augment", "200", "--data-dir", str(data_dir), "--out", str(tmp_path / "t2"),
                           "--datasets", "mnist"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "--augment 100 or less" in proc.stderr


@pytest.mark.slow  # experiments/table2.py end to end
def test_table2_writes_only_strict_json(table2_out):
    out, _ = table2_out

    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    files = sorted(out.rglob("*.json"))
    assert out / "table2.json" in files
    for path in files:
        json.loads(path.read_text(), parse_constant=reject)
