"""Over/underfit exclusion and the training plots."""

import numpy as np
import pytest

from jaxwvae import cli
from jaxwvae.runs import rundir
from jaxwvae.commands import sweep as sweep_command
from jaxwvae.engine.results import classify
from jaxwvae.reports import plots


def run(**changes):
    base = {"kl": 25.0, "t_gap": -3.0, "rec": 80.0, "train_rec": 79.0, "diverged": False, "diverged_step": None}
    base.update(changes)
    return base


@pytest.mark.parametrize("changes, reason", [
    ({}, None),
    ({"diverged": True, "diverged_step": 17}, "diverged at step 17"),
    ({"kl": 0.3}, "underfit"),
    ({"t_gap": -70.0}, None),  # a very negative T alone is kept (see jaxwvae.engine.results)
    ({"rec": 90.0, "train_rec": 80.0}, "overfit: test reconstruction 12.5%"),
])
def test_classify(changes, reason):
    excluded, why = classify(run(**changes))
    assert excluded == (reason is not None)
    assert (why is None) if reason is None else reason in why


def test_boundaries_are_kept():
    assert not classify(run(kl=1.0, t_gap=-20.0, rec=84.0, train_rec=80.0))[0]


def test_moving_average_matches_numpy():
    x = np.random.default_rng(0).normal(size=(3, 40))
    x[1, 5] = np.nan
    got = plots.moving_average(x, 7)
    for r in range(3):
        for t in range(40):
            window = x[r, max(0, t - 6): t + 1]
            np.testing.assert_allclose(got[r, t], np.nanmean(window), rtol=1e-12)  # float64 sums of <= 7 values


@pytest.mark.slow  # trains a sweep
def test_sweep_writes_readable_plots(data_dir, tmp_path):
    out = tmp_path / "run"
    argv = ["--seeds", "3", "--data-dir", str(data_dir), "--out", str(out), "--train-size", "1000",
            "--test-size", "500", "--epochs", "2", "--hidden", "32", "--latent-dim", "4", "--no-progress", "--plots"]
    assert cli.run_main(sweep_command.main, argv) == 0
    for name in ("T_gap.png", "lambda.png", "reconstruction.png", "training.png", "prior_samples.png",
                 "test_reconstructions.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name


def test_plot_titles_and_axes_fit_the_run(tmp_path, monkeypatch):
    """A 20-step run's caption names the window used; the reconstruction axis leaves out the first steps."""
    steps = 400
    rec = np.concatenate([np.linspace(560, 120, 20), np.full(steps - 20, 100.0)])[None].repeat(2, 0)
    rec = rec + np.random.default_rng(0).normal(0, 1, rec.shape)
    history = {"loss": rec, "rec": rec, "t_gap": rec * 0, "lam": rec * 0 + 1, "seeds": np.arange(2)}
    out = tmp_path
    np.savez(out / "history.npz", **history)
    rundir.write_json(out / "config.json", {"config": {"dataset": "mnist", "objective": "w", "lambda_rule": "fixed",
                                                       "grid": []}})
    monkeypatch.setattr(plots, "write_run_images", lambda out: [])
    captions, limits = [], {}
    original_save = plots._save

    def spy(fig, path):
        captions.append(fig._suptitle.get_text())
        limits[path.name] = fig.axes[0].get_ylim()
        return original_save(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    plots.write_run_plots(out)
    assert all("moving average over 40 steps" in c for c in captions)  # a tenth of 400 steps, not 50
    low, high = limits["reconstruction.png"]
    assert 90 < low < 100 < high < 115  # the plateau, not the first steps' 560


@pytest.mark.slow  # trains a sweep
def test_grid_plots_draw_one_median_per_point(data_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    argv = ["--seeds", "2", "--data-dir", str(data_dir), "--out", str(out), "--train-size", "1000",
            "--test-size", "500", "--epochs", "1", "--hidden", "32", "--latent-dim", "4", "--no-progress",
            "--grid", "lambda_c=0.05,0.005", "--grid", "lam=1,2"]
    assert cli.run_main(sweep_command.main, argv) == 0
    labels = []
    original = plots.plot_replicas

    def spy(ax, values, **kw):
        labels.append(list(kw["groups"]))
        return original(ax, values, **kw)

    monkeypatch.setattr(plots, "plot_replicas", spy)
    plots.write_run_plots(out)
    assert labels[0] == ["lambda_c=0.05, lam=1", "lambda_c=0.05, lam=2", "lambda_c=0.005, lam=1",
                         "lambda_c=0.005, lam=2"]
    assert (out / "training.png").stat().st_size > 10_000
