"""The sweep engine: outputs, replica = solo, one compile, the λ recursion in the file, host = device."""

import jax
import numpy as np
import pytest

from jaxwvae.core import lambda_rule
from jaxwvae.devices.distributed import to_host
from jaxwvae.engine import sweep
from jaxwvae.engine.plan import load_split, make_plan
from jaxwvae.engine.program import Program
from jaxwvae.replica import train
from tests.conftest import load, small

pytestmark = pytest.mark.slow  # each test trains a sweep (sweep.run end to end, or the engine's chunks)


@pytest.fixture(scope="module")
def arima_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("arima")
    sweep.run(small(data_dir, seeds=(0, 1, 2), lam="uniform:0:20"), out, progress=False)
    return load(out)


def test_outputs_have_the_documented_shape(arima_run):
    results, history = arima_run
    assert set(results) >= {"config", "device", "timing", "runs"}
    assert set(results["timing"]) >= {"compile_s", "train_s", "steps", "replicas"}
    assert results["timing"]["steps"] == 20 and results["timing"]["replicas"] == 3
    assert [r["seed"] for r in results["runs"]] == [0, 1, 2]
    for r in results["runs"]:
        assert set(r) >= {"seed", "loss", "rec", "w2", "kl", "t_gap", "lam_init", "lam_final", "diverged"}
        assert np.isfinite(r["loss"]) and not r["diverged"]
        # T's float32 mean over the test images against the difference of two other float32 means (W2², KL,
        # both larger than T): their round-off (~1e-6 of their size) sets the scale, not T's
        np.testing.assert_allclose(r["t_gap"], r["w2"] - r["kl"], rtol=1e-4, atol=1e-4)
    for name in ("loss", "rec", "t_gap", "lam", "t_forecast"):
        assert history[name].shape == (3, 20)
    np.testing.assert_array_equal(history["seeds"], [0, 1, 2])


def test_loss_falls(arima_run):
    _, history = arima_run
    assert np.all(history["loss"][:, -3:].mean(1) < 0.9 * history["loss"][:, :3].mean(1))  # 20 steps of Adam


def test_lambda_recursion_holds_in_the_file(arima_run):
    results, h = arima_run
    c = results["config"]["lambda_c"]
    expected = lambda_rule.next_lambda(h["lam"][:, :-1], h["t_forecast"][:, :-1], h["t_gap"][:, :-1], c=c, xp=np)
    # float32 on both sides; XLA may fuse the update's multiply-add: a few ulps of λ ~ 1-20
    np.testing.assert_allclose(h["lam"][:, 1:], expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose([r["lam_final"] for r in results["runs"]],
                               lambda_rule.next_lambda(h["lam"][:, -1], h["t_forecast"][:, -1],
                                                       h["t_gap"][:, -1], c=c, xp=np), rtol=1e-6)
    assert np.all(np.isfinite(h["t_forecast"]))


def test_uniform_lambda_draws_one_value_per_replica(arima_run):
    results, h = arima_run
    lam0 = [r["lam_init"] for r in results["runs"]]
    assert len(set(lam0)) == 3 and all(0 <= v < 20 for v in lam0)
    np.testing.assert_array_equal(h["lam"][:, 0], np.float32(lam0))


def test_fixed_rule_keeps_lambda_and_writes_nan_forecasts(data_dir, tmp_path):
    sweep.run(small(data_dir, lambda_rule="fixed", lam="2.5", epochs=1), tmp_path, progress=False)
    results, h = load(tmp_path)
    assert np.all(h["lam"] == 2.5) and np.all(np.isnan(h["t_forecast"]))
    assert all(r["lam_final"] == 2.5 for r in results["runs"])


def test_replica_equals_the_same_seed_trained_alone(data_dir, tmp_path):
    # The seed's key alone decides its init, λ₀, data order and noise, so replica 1 of a 3-seed sweep
    # must follow seed 1 trained alone. Only float rounding may differ (vmapped vs unbatched matmuls):
    # measured 6e-8 relative on the loss and 3e-7 on T after 20 steps, λ identical. λ₀ = 1 keeps T away
    # from 0, where a rounding-size change could flip the forecast's sign and with it λ's direction.
    sweep.run(small(data_dir, seeds=(0, 1, 2)), tmp_path / "swept", progress=False)
    sweep.run(small(data_dir, seeds=(1,)), tmp_path / "solo", progress=False)
    results, swept = load(tmp_path / "swept")
    solo_results, solo = load(tmp_path / "solo")
    for name in ("loss", "rec", "t_gap", "lam"):
        np.testing.assert_allclose(swept[name][1], solo[name][0], rtol=1e-5, atol=1e-6, err_msg=name)
    for key in ("loss", "rec", "lam_final"):
        np.testing.assert_allclose(results["runs"][1][key], solo_results["runs"][0][key], rtol=1e-5)


@pytest.mark.parametrize("grid", [(), ((("lambda_c", 0.01),), (("learning_rate", 3e-3), ("lam", "uniform:0:2")))],
                         ids=["seeds", "grid"])
def test_the_step_is_traced_once_per_run(data_dir, tmp_path, monkeypatch, grid):
    traces = []
    original = train.train_step

    def counting(state, x):
        traces.append(1)
        return original(state, x)

    monkeypatch.setattr(train, "train_step", counting)
    # 2 epochs of 4 chunks each: 8 compiled calls, one trace, with or without a grid of hyperparameters.
    sweep.run(small(data_dir, epochs=2, grid=grid), tmp_path, progress=False)
    assert len(traces) == 1


def test_host_forecaster_equals_device_forecaster(data_dir, tmp_path_factory):
    runs = {}
    for forecaster in ("device", "host"):
        out = tmp_path_factory.mktemp(forecaster)
        sweep.run(small(data_dir, forecaster=forecaster, lam="uniform:0:5"), out, progress=False)
        runs[forecaster] = load(out)[1]
    # the same estimator in float32 by NumPy on the host and by XLA on the device (other solves, other
    # roundings), then 20 training steps fed by its λ: 1e-4, as in test_lambda_rule's host = device test
    for name in ("lam", "t_forecast", "t_gap", "loss"):
        np.testing.assert_allclose(runs["host"][name], runs["device"][name], rtol=1e-4, atol=1e-4, err_msg=name)


def test_a_diverging_replica_is_frozen_and_harms_no_other(data_dir):
    config = small(data_dir, seeds=(0, 1, 2), lambda_rule="fixed", lam="1").resolved()
    images_np = load_split(config, "train")
    plan = make_plan(config, len(images_np), jax.device_count())
    program = Program.compile(config, plan, images_np.shape[1])
    images = program.put_images(images_np)

    def run(poison):
        states = program.init_states()
        if poison:  # an infinite λ makes replica 1's loss infinite at its first step
            states = program.set_lam(states, np.array([1.0, np.inf, 1.0], np.float32))
        collected = []
        orders = program.orders(states, 0)
        for first in range(0, plan.steps_per_epoch, plan.chunk):
            states, metrics = program.run(states, images, orders, first)
            collected.append(to_host(metrics)["loss"])
        return to_host(states), np.concatenate(collected, axis=1)

    clean_states, clean_loss = run(False)
    poisoned_states, poisoned_loss = run(True)
    assert poisoned_states.diverged_step.tolist() == [-1, 0, -1]
    assert np.all(np.isnan(poisoned_loss[1]))
    np.testing.assert_array_equal(poisoned_loss[[0, 2]], clean_loss[[0, 2]])
    for a, b in zip(jax.tree_util.tree_leaves(clean_states.params), jax.tree_util.tree_leaves(poisoned_states.params)):
        np.testing.assert_array_equal(a[[0, 2]], b[[0, 2]])
    # the frozen replica kept its initial parameters, λ and forecaster state; its Adam moments stay finite
    fresh = to_host(program.init_states())
    for a, b in zip(jax.tree_util.tree_leaves(fresh.params), jax.tree_util.tree_leaves(poisoned_states.params)):
        np.testing.assert_array_equal(a[1], b[1])
    assert poisoned_states.lam[1] == np.inf and poisoned_states.step[1] == plan.steps_per_epoch
    for a, b in zip(jax.tree_util.tree_leaves(fresh.rule_state), jax.tree_util.tree_leaves(poisoned_states.rule_state)):
        np.testing.assert_array_equal(a[1], b[1])
    assert all(np.all(np.isfinite(x[1])) for x in jax.tree_util.tree_leaves(poisoned_states.opt_state))


def test_a_remainder_call_ends_each_epoch_and_changes_nothing(data_dir, tmp_path):
    # 2,300 images = 23 steps per epoch, a prime: chunks of 10, 10 and a compiled remainder of 3,
    # against one step per call. Same steps, same order; only the compiled program around them differs
    # (scan of 10 vs 3 vs 1), so the values agree to float rounding, as in the replica-vs-solo test.
    runs = {}
    for cap in (10, 1):
        out = tmp_path / str(cap)
        sweep.run(small(data_dir, train_size=2300, epochs=2, steps_per_call=cap), out, progress=False)
        runs[cap] = load(out)
    plan = make_plan(small(data_dir, train_size=2300, steps_per_call=10).resolved(), 2300, 1)
    assert (plan.chunk, plan.remainder) == (10, 3)
    for name in ("loss", "t_gap", "lam"):
        assert np.all(np.isfinite(runs[10][1][name])), name
        np.testing.assert_allclose(runs[10][1][name], runs[1][1][name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert runs[10][0]["timing"]["steps"] == 46
