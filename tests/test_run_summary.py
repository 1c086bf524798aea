"""What a finished run says: the facts per grid point, its notes (as Python warnings), the progress line."""

import io
import warnings

import pytest

from jaxwvae import config as config_lib
from jaxwvae.commands import sweep as sweep_command
from jaxwvae.engine import results, sweep
from jaxwvae.errors import RunWarning
from jaxwvae.runs import progress


def outcome(objective="w", steps=9000, kls=(0.05, 0.07, 30.0, 40.0), diverged=(False, False, False, True)):
    runs = []
    for i, (kl, bad) in enumerate(zip(kls, diverged)):
        run = {"seed": i % 2, "point": i // 2, "loss": 100.0 + i, "rec": 90.0 + i, "kl": kl, "w2": 2.0 * kl,
               "mmd": 0.01, "t_gap": 1.0, "lam_final": 1.0 + i, "train_rec": 90.0 + i, "diverged": bad}
        if bad:
            run.update(loss=float("nan"), rec=None)
        run["excluded"], run["reason"] = results.classify(run)
        runs.append(run)
    return {"config": {"objective": objective, "grid": [{"lam": 1.0}, {"lam": 2.0}]}, "runs": runs,
            "timing": {"steps": steps}}


def test_by_point_gives_medians_and_counts_per_grid_point():
    rows = results.by_point(outcome())
    assert [r["n"] for r in rows] == [2, 2] and [r["hyper"] for r in rows] == [{"lam": 1.0}, {"lam": 2.0}]
    assert rows[0]["loss"] == 100.5 and rows[0]["w2"] == pytest.approx(0.12) and rows[0]["term"] == "w2"
    assert (rows[0]["collapsed"], rows[0]["diverged"], rows[0]["excluded"]) == (2, 0, 2)
    assert (rows[1]["collapsed"], rows[1]["diverged"]) == (0, 1)
    assert rows[1]["loss"] == 102.0 and rows[1]["rec"] == 92.0  # the diverged replica's NaN / null left out
    assert results.by_point(outcome("wae"))[0]["term"] == "mmd"


def test_the_collapse_note_needs_a_long_run_and_never_recommends_the_setting_in_use():
    adaptive = config_lib.paper_mnist()
    assert not [n for n in results.notes(adaptive, outcome(steps=20)) if "collapse" in n]
    note, diverged = results.notes(adaptive, outcome())
    assert "2 of 4 replicas ended in posterior collapse" in note and "--preset paper_adaptive_slow" in note
    assert "1 of 4 replicas diverged" in diverged
    slow = config_lib.paper_adaptive_slow()
    note = results.notes(slow, outcome())[0]
    assert "paper_adaptive_slow" not in note and "--lambda-rule fixed --lam 1" in note
    fixed = config_lib.paper_mnist(lambda_rule="fixed", lam="1")
    assert "paper_adaptive_slow" not in results.notes(fixed, outcome())[0]


def test_the_eta_is_measured_after_the_first_update(monkeypatch):
    clock = iter([0.0, 100.0, 102.0])  # init; compile and restore took 100 s before the first update
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    bar = progress.Progress(10, stream=out, min_interval=0.0)
    bar.update(1, loss=1.0, rec=None)
    bar.update(3, loss=2.0)
    first, second = out.getvalue().splitlines()
    assert "eta –" in first and "rec –" in first
    assert "eta 7.0s" in second  # 2 s for 2 steps since the first update, 7 to go


@pytest.mark.parametrize("via", ["python", "command line"])
def test_a_run_returns_its_facts_and_history_and_warns(data_dir, tmp_path, monkeypatch, capsys, via):
    monkeypatch.setattr(results, "JUDGE_COLLAPSE_STEPS", 1)  # judge this short run, to see the note
    config = config_lib.smoke(data_dir=str(data_dir), lambda_rule="fixed", lam="1000", train_size=500,
                              test_size=200, hidden=(32, 16), latent_dim=4)
    if via == "python":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = sweep.run(config, tmp_path, progress=False)
        assert got["history"]["loss"].shape == (2, got["timing"]["steps"])
        assert got["points"][0]["n"] == 2 and got["points"][0]["collapsed"] == 2
        assert [str(w.message) for w in caught if w.category is RunWarning][0].startswith("2 of 2 replicas ended")
    else:
        argv = ["--preset", "smoke", "--data-dir", str(data_dir), "--lambda-rule", "fixed", "--lam", "1000",
                "--train-size", "500", "--test-size", "200", "--hidden", "32,16", "--latent-dim", "4",
                "--out", str(tmp_path / "run"), "--no-progress"]
        assert sweep_command.main(argv) == 0
        text = capsys.readouterr().out
        assert "point  n  test loss" in text and "collapsed  diverged  excluded" in text
        assert "note: 2 of 2 replicas ended in posterior collapse" in text
        assert f"next: python experiments/sweep.py --resume --out {tmp_path / 'run'} --plots" in text


def test_generate_writes_samples_and_reconstructions_of_a_finished_run(data_dir, tmp_path, capsys):
    from jaxwvae import commands

    config = config_lib.smoke(data_dir=str(data_dir), train_size=500, test_size=200, hidden=(32, 16), latent_dim=4)
    sweep.run(config, tmp_path, progress=False)
    assert commands.main(["generate", str(tmp_path), "--replicas", "2", "--n", "4"]) == 0
    assert "prior_samples.png" in capsys.readouterr().out
    assert (tmp_path / "test_reconstructions.png").read_bytes()[:4] == b"\x89PNG"
    assert commands.main(["generate", str(tmp_path / "nowhere")]) == 2  # no finished run: one line, status 2
