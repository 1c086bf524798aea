"""The λ study end to end on tiny data: every reading in one grid, the phase map, statistics and pictures."""

import json

import numpy as np
import pytest

from jaxwvae.engine.results import MIN_KL
from jaxwvae.reports import stats, study

TINY = dict(seeds=(0, 1), epochs=2, train_size=1000, test_size=500, hidden=(32, 16), latent_dim=4,
            steps_per_call=5, checkpoint_every=0)


def strict(path):
    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(path.read_text(), parse_constant=reject)


@pytest.fixture(scope="module")
def study_out(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    report = study.run(out, dict(TINY, data_dir=str(data_dir)), fid_samples=200,
                       feature_recipe={"train_size": 1000, "epochs": 1}, progress=False)
    return out, report


def test_points_are_the_readings_and_the_phase_cells_once_each():
    points, readings, phase = study.study_points()
    assert len(set(points)) == len(points)
    assert set(readings) == set(study.READINGS) and len(phase) == len(study.PHASE_C) * len(study.PHASE_LAMBDA_MAX)
    assert readings["section3"] == phase[(0.05, None)] and readings["bounded"] == phase[(0.05, 20.0)]
    assert readings["c0.005"] == phase[(0.005, None)]
    assert len(points) == len(set(readings.values()) | set(phase.values()))


@pytest.mark.slow  # the λ study end to end
def test_one_program_holds_every_reading(study_out):
    out, report = study_out
    results = strict(out / "mnist_w_grid" / "results.json")
    points, _, _ = study.study_points()
    assert len(results["runs"]) == len(points) * 2 and len(results["grid"]) == len(points)
    for name, (_, point) in study.READINGS.items():
        hyper = report["readings"][name]["hyper"]
        for field, value in point.items():
            assert hyper[field] == value, (name, field)
    assert set(report["others"]) == {"kl", "wae"}


@pytest.mark.slow  # the λ study end to end
def test_summaries_agree_with_the_runs(study_out):
    out, report = study_out
    runs = strict(out / "mnist_w_grid" / "results.json")["runs"]
    for name, r in report["readings"].items():
        members = [x for x in runs if x["point"] == r["point"]]
        collapsed = sum(x["kl"] < MIN_KL for x in members)
        assert r["collapsed"]["k"] == collapsed and r["collapsed"]["n"] == 2
        assert r["t_final"] == stats.summary([x["t_gap"] for x in members])
        assert r["fid"]["n"] == 2 and r["fid"]["ci_low"] <= r["fid"]["mean"] <= r["fid"]["ci_high"]
        assert r["reproduces_figures_3_4"]["k"] <= 2 - collapsed
    assert report["best"] in report["readings"] and report["best"] != "fixed1"


@pytest.mark.slow  # the λ study end to end
def test_every_reading_gets_the_table1_tests(study_out):
    _, report = study_out
    for name in study.READINGS:
        for claim in ("w_vs_wae", "w_vs_kl"):
            test = report["ordering"][name][claim]
            assert test["alternative"] == "less" and test["n_a"] == 2 and test["n_b"] == 2
            assert test["welch"]["test"] == "welch" and test["mann_whitney"]["test"] == "mann-whitney"


@pytest.mark.slow  # the λ study end to end
def test_files_are_strict_and_the_pictures_exist(study_out):
    out, report = study_out
    for path in out.rglob("*.json"):
        strict(path)
    for name in ("phase_map.png", "lambda_trajectories.png", "figures3_4.png"):
        assert (out / name).stat().st_size > 1000, name
    text = (out / "study.md").read_text()
    assert "Wilson" in text and "Student t" in text and f"**{report['best']}**" in text
    assert text.count("\n| 0.05 |") == 1  # the phase map's first row


@pytest.mark.slow  # the λ study end to end
def test_a_rerun_reads_the_finished_sweeps(study_out, data_dir):
    out, report = study_out
    before = {p: p.stat().st_mtime_ns for p in out.rglob("results.json")}
    again = study.run(out, dict(TINY, data_dir=str(data_dir)), fid_samples=200,
                      feature_recipe={"train_size": 1000, "epochs": 1}, progress=False)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("results.json")} == before
    assert again["readings"]["section3"]["fid"] == report["readings"]["section3"]["fid"]


def test_reproduces_figures_reads_t_and_the_reconstruction():
    """The claim reads the last two epochs' means (``reports.cells``' summary facts), computed here from a history."""
    from jaxwvae.reports.cells import _series_facts

    steps = 10

    def last(t_gap, rec):
        history = {"loss": rec[None], "t_gap": t_gap[None], "rec": rec[None]}
        return _series_facts(history, epochs=3)[0]["last_epoch"]

    falling = np.linspace(200.0, 100.0, 3 * steps)
    t_small = np.full(3 * steps, -0.2)
    run = {"kl": 5.0}
    assert study.reproduces_figures(run, last(t_small, falling))
    assert not study.reproduces_figures(run, last(t_small - 5.0, falling))  # T far from 0
    assert not study.reproduces_figures(run, last(t_small, falling[::-1]))  # rec rising
    assert not study.reproduces_figures({"kl": 0.1}, last(t_small, falling))  # collapsed
    assert not study.reproduces_figures(run, {"t_gap": None, "rec": 1.0, "rec_before": 2.0})  # no finite T


def test_a_subset_of_readings_has_no_phase_map():
    points, readings, phase = study.study_points(("fixed1", "section3"))
    assert list(readings) == ["section3", "fixed1"] and phase == {} and len(points) == 2
    assert study.check_names(["fixed1", "section3"]) == ("section3", "fixed1")  # READINGS order
    assert study.check_names(None) is None
    with pytest.raises(ValueError, match="unknown reading.*nope.*choose from section3"):
        study.check_names(["section3", "nope"])


@pytest.mark.slow  # the λ study end to end
def test_a_subset_runs_alone_and_reuses_the_other_sweeps(study_out, data_dir, tmp_path):
    out, report = study_out
    for objective in ("kl", "wae"):  # the same seeds and config: read, not trained again
        (tmp_path / f"mnist_{objective}").symlink_to(out / f"mnist_{objective}")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("results.json")}
    sub = study.run(tmp_path, dict(TINY, data_dir=str(data_dir)), fid_samples=200,
                    feature_recipe={"train_size": 1000, "epochs": 1}, progress=False, names=("section3", "fixed1"))
    assert {p: p.stat().st_mtime_ns for p in out.rglob("results.json")} == before
    assert set(sub["readings"]) == {"section3", "fixed1"} and sub["phase"] == []
    # the same seeds and batches: the subset's replicas equal the full grid's (paired comparisons)
    for name in ("section3", "fixed1"):
        assert sub["readings"][name]["rec"]["mean"] == pytest.approx(report["readings"][name]["rec"]["mean"],
                                                                     rel=1e-5)  # the grid-vs-solo tolerance
    text = (tmp_path / "study.md").read_text()
    assert "Phase map" not in text and "Table 3 from the same sweeps" in text
    assert not (tmp_path / "phase_map.png").exists() and (tmp_path / "figures3_4.png").exists()


@pytest.mark.slow  # an experiments/lambda_study.py process
def test_an_unknown_reading_is_one_line(tmp_path):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "experiments/lambda_study.py", "--readings", "section3,bogus",
                           "--out", str(tmp_path / "x")], capture_output=True, text=True,
                          cwd=__import__("pathlib").Path(__file__).resolve().parents[1])
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "bogus" in proc.stderr and not (tmp_path / "x").exists()
