"""Grids: points x seeds in one program, each replica equal to a solo run with its point's values."""

import dataclasses
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxwvae import config as config_lib
from jaxwvae.config import grid
from jaxwvae.core import lambda_rule
from jaxwvae.devices.distributed import to_host
from jaxwvae.engine import sweep
from jaxwvae.engine.plan import make_plan
from jaxwvae.engine.program import Program
from jaxwvae.errors import ConfigError, RunWarning
from jaxwvae.replica import train
from tests.conftest import load, small

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]

# Each point moves one knob away from the default, so a wrong mapping of a value to its replica shows.
POINTS = (
    (("lambda_c", 0.005),),
    (("lambda_max", 0.99), ("lam", "uniform:0:2")),
    (("learning_rate", 3e-3), ("lambda_t_scale", 2.0)),
    (("sigma_max", 1.0), ("lambda_rule", "fixed")),
    (("lambda_min", 0.9), ("lambda_sign_zero", -1.0)),
)


@pytest.fixture(scope="module")
def grid_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    sweep.run(small(data_dir, seeds=(0, 1), grid=POINTS), out, progress=False)
    return load(out)


def test_parse_is_the_product_in_flag_order():
    points = grid.parse(["lambda_c=0.05,0.005", "lam=1,uniform:0:20", "sigma_max=none,1"])
    assert len(points) == 8
    assert points[0] == (("lambda_c", 0.05), ("lam", "1"), ("sigma_max", None))
    assert points[-1] == (("lambda_c", 0.005), ("lam", "uniform:0:20"), ("sigma_max", 1.0))
    assert grid.parse(["lambda-max=none,20"]) == ((("lambda_max", None),), (("lambda_max", 20.0),))


@pytest.mark.parametrize("specs, message", [
    (["hidden=1,2"], "cannot vary between replicas"),
    (["lambda_c="], "no values"),
    (["lambda_c"], "NAME=V1,V2"),
    (["lambda_c=abc"], "not of lambda_c's type"),
    (["lambda_c=0.1,0.1"], "appears twice"),
    (["lambda_c=0.1", "lambda_c=0.2"], "given twice"),
    (["sigma_max=maybe"], "not of sigma_max's type"),
])
def test_malformed_grids_are_refused(specs, message):
    with pytest.raises(ConfigError, match=message):
        grid.parse(specs)


@pytest.mark.parametrize("point, message", [
    ((("lambda_c", -1.0),), "--lambda-c"),
    ((("lambda_max", 1.0), ("lambda_min", 2.0)), "--lambda-max"),
    ((("lambda_t_scale", 3.0),), "--lambda-t-scale"),
    ((("learning_rate", 0.0),), "--learning-rate"),
    ((("lam", "uniform:5:1"),), "LOW > HIGH"),
])
def test_out_of_range_values_name_the_point(point, message):
    config = config_lib.smoke(grid=(point,))
    with pytest.raises(ConfigError, match=f"--grid point 0 .*{message}"):
        config.resolved()


def test_adaptive_points_need_the_w_objective():
    with pytest.raises(ConfigError, match="--grid point 1 .*needs --objective w"):
        config_lib.smoke(objective="kl", grid=((("lam", "1"),), (("lambda_rule", "arima"),))).resolved()


def test_replica_table_is_point_major():
    config = config_lib.smoke(seeds=(4, 7), grid=POINTS).resolved()
    table = grid.replica_table(config, 12)
    assert table["seed"].tolist() == [4, 7] * 5 + [8, 9]  # two padding replicas with unused seeds
    assert table["point"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 0, 0]
    assert table["lambda_c"][0] == np.float32(0.005) and table["lambda_max"][2] == np.float32(0.99)
    assert table["sigma_max"][6] == 1.0 and np.isinf(table["sigma_max"][0])
    assert table["lambda_rule"].tolist()[::2] == [1, 1, 1, 0, 1, 1]  # indices into names.LAMBDA_RULES
    assert set(table) >= set(lambda_rule.RuleHyper._fields)  # the state's names are the config's
    assert grid.replica_seeds(config) == [4, 7] * 5


@pytest.mark.slow  # sweep.run end to end
def test_outputs_carry_each_replicas_values(grid_run):
    results, h = grid_run
    assert len(results["runs"]) == 10 and len(results["grid"]) == 5
    for r in results["runs"]:
        assert r["hyper"] == results["grid"][r["point"]]
    assert h["point"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert h["seeds"].tolist() == [0, 1] * 5
    np.testing.assert_array_equal(h["hyper_lambda_c"][:2], 0.005)
    assert h["hyper_lam"][2] == "uniform:0:2" and h["hyper_lambda_rule"][6] == "fixed"
    assert np.isinf(h["hyper_lambda_max"][0]) and h["hyper_lambda_max"][2] == 0.99
    assert h["hyper_sigma_max"].tolist() == [np.inf] * 6 + [1, 1] + [np.inf] * 2


@pytest.mark.slow  # sweep.run end to end
def test_each_point_follows_its_own_values(grid_run):
    results, h = grid_run
    assert np.all(h["lam"][2:4] <= np.float32(0.99))  # λ_max bounds the rule
    assert np.all(h["lam"][8:10] >= np.float32(0.9))  # λ_min bounds it from below
    assert np.all(h["lam"][6:8] == 1.0) and np.all(np.isnan(h["t_forecast"][6:8]))  # the fixed point
    assert np.all(np.isfinite(h["t_forecast"][:6]))
    # the λ recursion with each replica's own c, bounds and readings
    for r in (0, 1, 4, 5, 8, 9):
        hyper = results["runs"][r]["hyper"]
        expected = lambda_rule.next_lambda(
            h["lam"][r, :-1], h["t_forecast"][r, :-1], h["t_gap"][r, :-1], c=np.float32(hyper["lambda_c"]),
            lam_min=np.float32(hyper["lambda_min"]), lam_max=np.float32(np.inf),
            t_scale=np.float32(hyper["lambda_t_scale"]), sign_zero=np.float32(hyper["lambda_sign_zero"]), xp=np)
        # float32 on both sides; XLA may fuse the update's multiply-add, so allow a few ulps of λ ~ 1
        np.testing.assert_allclose(h["lam"][r, 1:], expected, rtol=0, atol=1e-6)


def test_sigma_cap_holds_for_its_point_only(data_dir):
    config = small(data_dir, seeds=(0, 1), grid=POINTS).resolved()
    plan = make_plan(config, 2000, jax.device_count())
    states = Program.compile(config, plan, 784).init_states()
    x = jax.random.uniform(jax.random.key(1), (50, 784))

    def logvar(state):
        return state.apply_fn(state.params, x, jax.random.PRNGKey(0), state.sigma_max).logvar

    lv = np.asarray(jax.vmap(logvar)(states))
    assert np.all(lv[6:8] <= 0.0)  # point 3: σ <= 1, the paper's adjusted ReLU
    assert np.any(lv[[0, 1, 2, 3, 4, 5, 8, 9]] > 0.0)  # the others are uncapped (random init gives some σ > 1)


@pytest.mark.slow  # sweep.run end to end
@pytest.mark.parametrize("point", [1, 2, 3])
def test_a_grid_replica_equals_a_solo_run_with_its_values(data_dir, tmp_path, grid_run, point):
    # Same tolerance and reason as test_sweep.test_replica_equals_the_same_seed_trained_alone:
    # vmapped and unbatched matmuls round differently (measured ~1e-7 relative after 20 steps).
    results, swept = grid_run
    sweep.run(small(data_dir, seeds=(1,), **dict(POINTS[point])), tmp_path, progress=False)
    solo_results, solo = load(tmp_path)
    r = 2 * point + 1
    for name in ("loss", "rec", "t_gap", "lam"):
        np.testing.assert_allclose(swept[name][r], solo[name][0], rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(results["runs"][r]["rec"], solo_results["runs"][0]["rec"], rtol=1e-5)


def test_points_of_one_seed_start_from_the_same_parameters(data_dir):
    config = small(data_dir, seeds=(0, 1), grid=POINTS).resolved()
    plan = make_plan(config, 2000, jax.device_count())
    states = to_host(Program.compile(config, plan, 784).init_states())
    for leaf in jax.tree_util.tree_leaves(states.params):
        np.testing.assert_array_equal(leaf[0::2], np.broadcast_to(leaf[0], leaf[0::2].shape))
    orders = to_host(jax.vmap(train.epoch_order, in_axes=(0, None, None))(states, 0, 2000))
    np.testing.assert_array_equal(orders[1::2], np.broadcast_to(orders[1], orders[1::2].shape))
    rates = to_host(states.opt_state.hyperparams["learning_rate"])
    assert rates[4] == np.float32(3e-3) and rates[0] == np.float32(1e-3)


@pytest.mark.slow  # sweep.run end to end
def test_a_diverging_grid_point_harms_no_other(data_dir, tmp_path):
    # a learning rate of 1e6 sends point 1's replicas to non-finite values within a few steps
    points = ((("learning_rate", 1e-3),), (("learning_rate", 1e6),))
    with pytest.warns(RunWarning, match="1 of 2 replicas diverged"):  # the run says so, as a Python warning
        sweep.run(small(data_dir, seeds=(0,), grid=points, lambda_rule="fixed", lam="1"), tmp_path / "g",
                  progress=False)
    sweep.run(small(data_dir, seeds=(0,), lambda_rule="fixed", lam="1"), tmp_path / "solo", progress=False)
    results, h = load(tmp_path / "g")
    _, solo = load(tmp_path / "solo")
    assert results["runs"][1]["diverged"] and not results["runs"][0]["diverged"]
    np.testing.assert_allclose(h["loss"][0], solo["loss"][0], rtol=1e-5, atol=1e-6)  # as in the solo test


@pytest.mark.slow  # sweep.run end to end
def test_resume_continues_a_grid(data_dir, tmp_path):
    import shutil

    config = small(data_dir, seeds=(0,), epochs=2, checkpoint_every=20, grid=POINTS[:2])
    sweep.run(config, tmp_path / "full", progress=False)
    shutil.copytree(tmp_path / "full", tmp_path / "cut")
    # as if killed after the checkpoint of step 20: the outputs and the last checkpoint are gone
    for name in ("results.json", "history.npz"):
        (tmp_path / "cut" / name).unlink()
    shutil.rmtree(tmp_path / "cut" / "checkpoints" / "40")
    sweep.run(None, tmp_path / "cut", resume=True, progress=False)
    full, h_full = load(tmp_path / "full")
    cut, h_cut = load(tmp_path / "cut")
    for name in h_full:
        np.testing.assert_array_equal(h_full[name], h_cut[name], err_msg=name)
    assert [r["hyper"] for r in full["runs"]] == [r["hyper"] for r in cut["runs"]]
    assert [r["rec"] for r in full["runs"]] == [r["rec"] for r in cut["runs"]]


def run_cli(*args):
    return subprocess.run([sys.executable, str(REPO / "experiments" / "sweep.py"), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


@pytest.mark.slow  # an experiments/sweep.py process per case
@pytest.mark.parametrize("flags, message", [
    (["--grid", "foo=1"], "cannot vary between replicas"),
    (["--grid", "lambda_c="], "no values"),
    (["--grid", "lambda_c=-1"], "--lambda-c"),
    (["--grid", "lambda_c=x"], "not of lambda_c's type"),
])
def test_bad_grids_end_with_one_line_and_status_2(tmp_path, data_dir, flags, message):
    out = tmp_path / "run"
    done = run_cli("--preset", "smoke", "--data-dir", str(data_dir), "--out", str(out), *flags)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], done.stderr
    assert not out.exists()


def test_grid_fields_are_the_configs_per_replica_fields_parsed_by_their_annotations():
    per_replica = [f.name for f in dataclasses.fields(config_lib.SweepConfig) if f.metadata["per_replica"]]
    assert list(grid.FIELDS) == per_replica
    assert grid.FIELDS["sigma_max"]("none") is None and grid.FIELDS["sigma_max"]("2") == 2.0
    assert grid.FIELDS["lambda_max"]("inf") is None  # a float bound: inf and none both mean unbounded
    assert grid.FIELDS["learning_rate"]("0.01") == 0.01
    with pytest.raises(ValueError):
        grid.FIELDS["lambda_c"]("none")  # not optional: no None


def test_the_default_lambda_is_the_objectives_before_and_after_resolving():
    for objective, lam in (("w", 1.0), ("kl", 1.0), ("wae", 10.0)):
        config = config_lib.smoke(objective=objective)
        assert config.lam_init == config.resolved().lam_init == (lam, lam)
