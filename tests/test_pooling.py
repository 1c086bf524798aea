"""Seeds in batches: two sweeps pooled cell by cell equal one sweep of their seeds, read whole or from summaries.

(:mod:`jaxwvae.reports.cells`.) Overlapping seeds and sweeps that differ in more than the seeds are refused
in one line; a folder holding only its ``summary.json`` is read as its whole run was.
"""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from jaxwvae import config as config_lib
from jaxwvae.cli import ints
from jaxwvae.engine import sweep
from jaxwvae.errors import UserError
from jaxwvae.evaluation.replica_fid import FidScorer
from jaxwvae.reports import cells
from jaxwvae.runs import rundir

REPO = cells.pathlib.Path(__file__).resolve().parents[1]
FEATURES = {"train_size": 1000, "epochs": 1}
METRICS = ("kl", "rec", "t_gap", "w2", "lam_final", "train_rec")


def tiny(data_dir, seeds, **changes):
    base = dict(seeds=seeds, epochs=2, train_size=500, batch_size=10, test_size=300, hidden=(32, 16), latent_dim=4,
                steps_per_call=20, checkpoint_every=0, data_dir=str(data_dir), objective="kl")
    base.update(changes)
    return config_lib.SweepConfig(**base).resolved()


@pytest.fixture(scope="module")
def folders(data_dir, tmp_path_factory):
    """Seeds 0, 1 in ``a``; 2, 3 in ``b``; 0–3 in ``whole``: each the cell ``mnist_kl`` of its folder."""
    root = tmp_path_factory.mktemp("pool")
    for name, seeds in (("a", (0, 1)), ("b", (2, 3)), ("whole", (0, 1, 2, 3))):
        sweep.run(tiny(data_dir, seeds), root / name / "mnist_kl", progress=False)
    return root


def assert_same_cell(pooled, whole, scorer):
    assert pooled.seeds == whole.seeds == (0, 1, 2, 3)
    for key in METRICS:
        np.testing.assert_allclose([r[key] for r in pooled.runs], [r[key] for r in whole.runs], rtol=1e-5,
                                   err_msg=key)
    assert [r["excluded"] for r in pooled.runs] == [r["excluded"] for r in whole.runs]
    a, b = pooled.loss_at(), whole.loss_at()
    assert a.keys() == b.keys() == {100}  # 2 epochs of 50 steps: Table 3's first iteration
    for step in a:
        np.testing.assert_allclose(a[step], b[step], rtol=1e-5)
    for key in ("t_gap", "rec", "rec_before"):
        np.testing.assert_allclose([f[key] for f in pooled.facts("last_epoch")],
                                   [f[key] for f in whole.facts("last_epoch")], rtol=1e-5)
    np.testing.assert_allclose(pooled.fids(scorer), whole.fids(scorer), rtol=1e-4)


def test_two_batches_pooled_equal_one_sweep_of_their_seeds(folders, data_dir):
    scorer = FidScorer("mnist", str(data_dir), feature_recipe=FEATURES, n=300)
    config = tiny(data_dir, (0, 1))
    pooled = cells.cell(config, folders / "a" / "mnist_kl", [folders / "b" / "mnist_kl"], progress=False)
    whole = cells.cell(tiny(data_dir, (0, 1, 2, 3)), folders / "whole" / "mnist_kl", progress=False)
    assert_same_cell(pooled, whole, scorer)
    assert pooled.where == ((0, 0), (0, 1), (1, 0), (1, 1))

    # the checkpoints, results and history gone: the summaries alone give the same cell
    compact = folders / "compact"
    for name in ("a", "b"):
        (compact / name / "mnist_kl").mkdir(parents=True)
        shutil.copy(folders / name / "mnist_kl" / cells.SUMMARY, compact / name / "mnist_kl")
    read = cells.cell(config, compact / "a" / "mnist_kl", [compact / "b" / "mnist_kl"], progress=False)
    assert_same_cell(read, whole, scorer)
    assert not read.has_parameters(0) and pooled.has_parameters(3)
    with pytest.raises(UserError, match="parameters are gone"):
        read.parameters(0)
    assert read.history() is None and pooled.history()["loss"].shape[0] == 4
    summary = rundir.read_json(compact / "a" / "mnist_kl" / cells.SUMMARY)
    assert {"config", "command", "machine", "date", "device", "replicas", "fid"} <= set(summary)


def test_a_summary_without_the_asked_fid_and_no_checkpoints_is_one_error(folders, data_dir, tmp_path):
    (tmp_path / "mnist_kl").mkdir()
    shutil.copy(folders / "a" / "mnist_kl" / cells.SUMMARY, tmp_path / "mnist_kl")
    c = cells.cell(tiny(data_dir, (0, 1)), tmp_path / "mnist_kl", progress=False)
    with pytest.raises(UserError, match="no FID on .* with 123 samples"):
        c.fids(FidScorer("mnist", str(data_dir), feature_recipe=FEATURES, n=123))


def test_overlapping_seeds_are_refused(folders, data_dir):
    with pytest.raises(UserError, match="seed 0 is in both"):
        cells.cell(tiny(data_dir, (0, 1)), folders / "a" / "mnist_kl", [folders / "whole" / "mnist_kl"],
                   progress=False)


def test_a_pool_that_differs_in_more_than_the_seeds_is_refused(folders, data_dir, tmp_path):
    other = tmp_path / "mnist_kl"
    sweep.run(tiny(data_dir, (5,), learning_rate=3e-3), other, progress=False)
    with pytest.raises(UserError, match=r"differs in more than the seeds: learning_rate"):
        cells.cell(tiny(data_dir, (0, 1)), folders / "a" / "mnist_kl", [other], progress=False)
    with pytest.raises(UserError, match="holds neither a run nor"):
        cells.cell(tiny(data_dir, (0, 1)), folders / "a" / "mnist_kl", [tmp_path / "nowhere"], progress=False)


def test_a_summary_asked_for_other_seeds_says_which_it_holds(folders, data_dir, tmp_path):
    (tmp_path / "mnist_kl").mkdir()
    shutil.copy(folders / "b" / "mnist_kl" / cells.SUMMARY, tmp_path / "mnist_kl")
    with pytest.raises(UserError, match="holds seeds \\[2, 3\\].*--seed-list 2,3"):
        cells.cell(tiny(data_dir, (0, 1)), tmp_path / "mnist_kl", progress=False)


def test_seed_lists_take_ranges():
    assert ints("10-12,3") == (10, 11, 12, 3)
    assert ints("-1") == (-1,)  # a negative number, refused later by the config
    for bad in ("3-1", "a-b", "1-"):
        with pytest.raises(Exception):
            ints(bad)


@pytest.mark.slow
def test_table3_pools_from_the_command_line_and_refuses_overlap(data_dir, tmp_path):
    """``jaxwvae table3 --pool``: n is the pooled count; overlapping seeds: one line, exit status 2."""
    flags = ["--epochs", "1", "--train-size", "1000", "--batch-size", "10", "--test-size", "300",
             "--data-dir", str(data_dir), "--no-progress"]

    def table3(*args):
        return subprocess.run([sys.executable, "-m", "jaxwvae", "table3", *flags, *args], cwd=REPO,
                              capture_output=True, text=True, timeout=900)

    first = table3("--seed-list", "0", "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr[-2000:]
    second = table3("--seed-list", "1", "--out", str(tmp_path / "b"))
    assert second.returncode == 0, second.stderr[-2000:]
    pooled = table3("--seed-list", "0", "--out", str(tmp_path / "a"), "--pool", str(tmp_path / "b"))
    assert pooled.returncode == 0, pooled.stderr[-2000:]
    report = rundir.read_json(tmp_path / "a" / "table3.json")
    assert {row["seeds"] for row in report["rows"]} == {2}
    assert all(len(row["per_image_per_seed"]["100"]) == 2 for row in report["rows"])
    overlap = table3("--seed-list", "0", "--out", str(tmp_path / "a"), "--pool", str(tmp_path / "a"))
    assert overlap.returncode == 2
    assert overlap.stderr.strip().count("\n") == 0 and "seed 0 is in both" in overlap.stderr
