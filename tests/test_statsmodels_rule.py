"""The statsmodels forecaster: direct fits, refit/extend, λ, workers, restore, NaN, warm-up, the sweep.

Worker processes cost ~1-2 s each to start (spawn + importing statsmodels),
so runs are shared through module fixtures and the series are short.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
from statsmodels.tsa.arima.model import ARIMA

from jaxwvae.config import SweepConfig
from jaxwvae.core import lambda_rule
from jaxwvae.engine import sweep
from jaxwvae.forecast import series
from jaxwvae.forecast.reference import forecast_agreement, reference_forecasts
from jaxwvae.forecast.statsmodels_rule import StatsmodelsRule

ORDER = (1, 1, 0)
STEPS = 30
SPLIT = 17  # restore point: with k = 5 the last refit before it is at step 13, so 4 extends are replayed
NAN_FROM = 22  # replica 3 (a copy of replica 1) diverges here
LAM0 = np.float32([1.0, 0.02, 3.0, 1.0])


def simulate(n, seed, phi=0.5, scale=1.0, offset=0.0):
    """An ARIMA(1, 1, 0) path: the cumulative sum of an AR(1), float32 like the sweep's T."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    e = rng.normal(scale=scale, size=n)
    for t in range(1, n):
        y[t] = phi * y[t - 1] + e[t]
    return (offset + np.cumsum(y)).astype(np.float32)


def histories():
    """Three clean replicas and a fourth that copies replica 1 until it diverges (NaN)."""
    x = np.stack([simulate(STEPS, 0), simulate(STEPS, 1, offset=2.0), simulate(STEPS, 2, phi=-0.3), simulate(STEPS, 1, offset=2.0)])
    x[3, NAN_FROM:] = np.nan
    return x


def config(refit_every=1, order=ORDER, c=0.05):
    return SweepConfig(forecaster="statsmodels", arima_order=order, refit_every=refit_every, lambda_c=c)


def direct_fit(values, order=ORDER):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ARIMA(np.asarray(values, np.float64), order=order, trend="n").fit()


def loaded(pid: int) -> dict:
    """What a live process has loaded and how many threads it runs, read from outside it (Linux /proc).

    A Python package with compiled parts shows as its shared objects in the process's memory map:
    JAX as ``jaxlib/``, statsmodels' ARIMA as ``statsmodels/tsa/statespace/``.
    """
    maps = pathlib.Path(f"/proc/{pid}/maps").read_text()
    return {"jax": "/jaxlib/" in maps, "statsmodels_arima": "/statsmodels/tsa/statespace/" in maps,
            "threads": len(os.listdir(f"/proc/{pid}/task"))}


def run_rule(x, refit_every=1, workers=1, state_at=None):
    """Feed ``x`` step by step; return forecasts, λ (one column more), failures, the state at ``state_at``, processes."""
    rule = StatsmodelsRule(config(refit_every), len(x), workers=workers)
    with rule:
        assert rule.workers == workers
        lam = LAM0.copy()
        lams, forecasts, state = [lam], [], None
        for t in range(x.shape[1]):
            if t == state_at:
                state = rule.state_dict()
            lam, f = rule.update(x[:, t], lam)
            assert lam.dtype == np.float32 and f.dtype == np.float32 and f.shape == (len(x),)
            lams.append(lam)
            forecasts.append(f)
        about = [loaded(p.pid) for p in rule.processes] if sys.platform == "linux" else None
    return {"forecast": np.stack(forecasts, 1), "lam": np.stack(lams, 1), "failed": rule.failed_fits.copy(),
            "state": state, "processes": rule.processes, "about": about}


@pytest.fixture(scope="module")
def x():
    return histories()


@pytest.fixture(scope="module")
def runs(x):
    """The uninterrupted runs: k = 1 on one worker, k = 5 on one and on three (replica 3 alone on one)."""
    return {
        (1, 1): run_rule(x, 1, 1, state_at=SPLIT),
        (5, 1): run_rule(x, 5, 1, state_at=SPLIT),
        (5, 3): run_rule(x, 5, 3),
    }


@pytest.fixture(scope="module")
def reference(x):
    """``reference_forecasts`` of the same histories (float64), refitting every step."""
    return reference_forecasts(x, ORDER, workers=1)


# ----------------------------------------------------------------- against statsmodels called directly
@pytest.mark.slow  # statsmodels ARIMA fits in worker processes
def test_refit_every_step_equals_direct_fits(x, runs, reference):
    for r in range(3):
        for n in (3, 4, 10, 25, STEPS):
            expected = float(direct_fit(x[r, :n]).forecast(1)[0])
            # the same statsmodels fit in another process, float64: optimiser round-off only
            np.testing.assert_allclose(reference[r, n - 1], expected, rtol=1e-9, atol=1e-9)
            assert runs[1, 1]["forecast"][r, n - 1] == np.float32(expected), (r, n)


@pytest.mark.slow  # statsmodels ARIMA fits in worker processes
def test_refit_every_k_equals_fit_then_extend(x, runs):
    need = series.warmup_values(ORDER)
    for r in range(3):
        results = None
        for n in range(need, STEPS + 1):  # n values seen
            if (n - need) % 5 == 0:
                results = direct_fit(x[r, :n])
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    results = results.extend(np.float64(x[r, n - 1 : n]))
            expected = float(results.forecast(1)[0])
            assert runs[5, 1]["forecast"][r, n - 1] == np.float32(expected), (r, n)  # the same calls: bitwise
    # k = 5 is not k = 1 in disguise
    assert not np.array_equal(runs[5, 1]["forecast"][:3], runs[1, 1]["forecast"][:3])


def test_extend_is_o1_and_conditions_on_the_whole_history():
    """``extend`` filters only the new value yet forecasts as if the whole history were re-filtered."""
    y = simulate(600, 5).astype(np.float64)
    fitted = direct_fit(y[:500])
    extended = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for v in y[500:]:
            extended = extended.extend(np.array([v]))
            assert extended.nobs == 1 and extended.model.nobs == 1  # O(1): one observation filtered
        refiltered = fitted.append(y[500:], refit=False)  # O(t): all 600 filtered again, same parameters
        assert refiltered.nobs == 600
        from_scratch = ARIMA(y, order=ORDER, trend="n").filter(fitted.params)
    np.testing.assert_allclose(extended.forecast(1)[0], refiltered.forecast(1)[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(extended.forecast(1)[0], from_scratch.forecast(1)[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(extended.params, fitted.params)
    # and it does depend on the old data: the same new values after another history forecast differently
    other = direct_fit(y[:500] + 3.0).extend(y[500:501])
    # a forecast conditioned on another history differs by far more than the 1e-10 agreement above
    assert abs(other.forecast(1)[0] - fitted.extend(y[500:501]).forecast(1)[0]) > 1e-3


# ----------------------------------------------------------------- λ, workers, NaN, warm-up
@pytest.mark.slow  # statsmodels ARIMA fits in worker processes
@pytest.mark.parametrize("key", [(1, 1), (5, 1)])
def test_lambda_update_is_next_lambda_on_the_forecasts(x, runs, key):
    run = runs[key]
    lam, f = run["lam"], run["forecast"]
    expected = lambda_rule.next_lambda(lam[:, :-1], f, x, c=0.05, xp=np)
    finite = np.isfinite(x)
    # The rule computes β from float32 per-replica hyperparameters (RuleHyper), the reference here from
    # Python floats (float64 β): they may differ by one float32 ulp of λ (measured 1.05e-7 relative).
    np.testing.assert_allclose(lam[:, 1:][finite], expected[finite], rtol=2.5e-7, atol=0)
    np.testing.assert_array_equal(lam[3, NAN_FROM + 1:], lam[3, NAN_FROM])  # a diverged replica keeps its λ
    assert np.all(lam[:, 1:][finite] >= 0) and np.any(lam[1, 1:] == 0)  # clamped at λ_min = 0


@pytest.mark.slow  # statsmodels ARIMA fits in worker processes
def test_one_and_three_workers_give_identical_results(runs):
    for name in ("forecast", "lam"):
        np.testing.assert_array_equal(runs[5, 1][name], runs[5, 3][name])


@pytest.mark.slow  # statsmodels ARIMA fits in worker processes
def test_a_nan_replica_harms_no_other_and_gets_nan(x, runs):
    for key in runs:
        f = runs[key]["forecast"]
        np.testing.assert_array_equal(f[3, :NAN_FROM], f[1, :NAN_FROM])
        assert np.all(np.isnan(f[3, NAN_FROM:])) and np.all(np.isfinite(f[:3]))
        assert runs[key]["failed"].tolist() == [0, 0, 0, 0]
    # after the divergence the clean replicas still get statsmodels' own forecasts
    for r in range(3):
        for n in (NAN_FROM + 1, STEPS):
            assert runs[1, 1]["forecast"][r, n - 1] == np.float32(direct_fit(x[r, :n]).forecast(1)[0])


@pytest.mark.slow  # statsmodels ARIMA fits in worker processes
def test_warm_up_is_the_last_value_until_enough_values(x, runs):
    need = series.warmup_values(ORDER)
    assert need == 3
    for key in runs:
        f = runs[key]["forecast"]
        np.testing.assert_array_equal(f[:, : need - 1], x[:, : need - 1])
        assert np.all(f[:3, need - 1] != x[:3, need - 1])
    # q = 0: the device estimator's rule, count - p - d >= max(p, 1) and count > d ...
    for p in range(4):
        for d in range(3):
            first = next(n for n in range(1, 20) if n - p - d >= max(p, 1) and n > d)
            assert series.warmup_values((p, d, 0)) == first
    # ... which is where the running-sum estimator's forecast first differs from the last value
    for order in [(1, 1, 0), (2, 1, 0), (1, 0, 0), (3, 2, 0)]:
        state = lambda_rule.arima_init(order, dtype=np.float64, xp=np)
        y = simulate(12, 3).astype(np.float64)
        first_ready = None
        for t, v in enumerate(y):
            state, f = lambda_rule.arima_update(state, np.float64(v), order, xp=np)
            if first_ready is None and f != v:
                first_ready = t + 1
        assert series.warmup_values(order) == first_ready, order
    # q > 0: q more values first
    assert series.warmup_values((1, 1, 1)) == 4
    assert series.warmup_values((0, 1, 2)) == 4
    assert series.warmup_values((2, 0, 1)) == 5


@pytest.mark.slow  # statsmodels ARIMA fits in worker processes
def test_warm_up_with_a_moving_average_term():
    y = simulate(6, 4).astype(np.float64)
    one = series.Series((1, 1, 1), 1)  # a worker's replica, run here
    f = [one.update(v) for v in y]
    assert f[:3] == y[:3].tolist()
    np.testing.assert_allclose(f[3:], [direct_fit(y[:n], (1, 1, 1)).forecast(1)[0] for n in (4, 5, 6)], rtol=1e-9)


# ----------------------------------------------------------------- restore after a kill
@pytest.mark.slow  # statsmodels ARIMA fits in worker processes
@pytest.mark.parametrize("refit_every", [1, 5])
def test_load_state_dict_continues_bitwise(x, runs, refit_every):
    run = runs[refit_every, 1]
    state = run["state"]
    assert set(state) == {"steps", "failed_fits", "order", "refit_every"}
    assert all(isinstance(v, np.ndarray) for v in state.values()) and int(state["steps"]) == SPLIT
    with StatsmodelsRule(config(refit_every), len(x), workers=1) as rule:
        rule.load_state_dict({k: v.copy() for k, v in state.items()}, x[:, :SPLIT].copy())
        lam = run["lam"][:, SPLIT]
        for t in range(SPLIT, STEPS):
            lam, f = rule.update(x[:, t], lam)
            np.testing.assert_array_equal(f, run["forecast"][:, t], err_msg=f"step {t}")
            np.testing.assert_array_equal(lam, run["lam"][:, t + 1], err_msg=f"step {t}")
        np.testing.assert_array_equal(rule.state_dict()["steps"], STEPS)
        with pytest.raises(ValueError, match="shape"):
            rule.load_state_dict(state, x[:, : SPLIT - 1])
    rule.close()  # twice is harmless


def test_replay_repeats_a_failed_refit_fallback(monkeypatch):
    """A refit that fails falls back to extending the older fit; a restore must land on the same results."""
    y = simulate(30, 6).astype(np.float64)
    original = series._fit

    def flaky(values, order):  # the refit on 13 values fails (k = 5: refits at 3, 8, 13, 18, …)
        return None if len(values) == 13 else original(values, order)

    monkeypatch.setattr(series, "_fit", flaky)
    live = series.Series(ORDER, 5)
    forecasts = [live.update(v) for v in y[:16]]
    restored = series.Series(ORDER, 5)
    restored.replay(y[:16])
    assert live.failed == 1
    assert [live.update(v) for v in y[16:]] == [restored.update(v) for v in y[16:]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        older = direct_fit(y[:8])
        for v in y[8:13]:
            older = older.extend(np.array([v]))
    assert forecasts[12] == older.forecast(1)[0]  # the step of the failed refit used the extended older fit


# ----------------------------------------------------------------- against the device estimator; the reference
@pytest.mark.slow  # 300 statsmodels ARIMA fits
def test_sign_agrees_with_the_device_estimator():
    y = simulate(300, 11, phi=0.5, scale=0.3, offset=0.5)
    assert np.sum(np.diff(np.sign(y)) != 0) >= 4  # T crosses zero: the sign question is not trivial
    reference = reference_forecasts(y[None], ORDER, workers=1)
    state = lambda_rule.arima_init(ORDER, dtype=np.float32, xp=np)
    device = []
    for v in y:
        state, f = lambda_rule.arima_update(state, v, ORDER, xp=np)
        device.append(f)
    summary = forecast_agreement(np.array(device)[None], reference)
    print(f"sign agreement statsmodels vs running-sum ARIMA(1,1,0) over 300 steps: "
          f"{summary['sign_agreement_overall']:.4f}, median |diff| {summary['median_abs_diff_overall']:.4g}")
    assert summary["steps_compared"] == [300]
    assert summary["sign_agreement_overall"] >= 0.95


@pytest.mark.slow  # statsmodels ARIMA fits in worker processes
def test_reference_forecasts_equal_the_rule_step_by_step(runs, reference):
    assert reference.dtype == np.float64 and np.isnan(reference[3, NAN_FROM:]).all()
    np.testing.assert_array_equal(reference.astype(np.float32), runs[1, 1]["forecast"])


def test_forecast_agreement_counts_by_hand():
    device = np.array([[1.0, -1.0, 0.0, np.nan], [2.0, 2.0, -3.0, 4.0]])
    reference = np.array([[2.0, 1.0, -0.0, 5.0], [1.0, 2.5, -1.0, -4.0]])
    s = forecast_agreement(device, reference)
    assert s["steps_compared"] == [3, 4]
    assert s["sign_agreement"] == [2 / 3, 3 / 4]  # 0 and -0.0 both count as >= 0
    assert s["sign_agreement_overall"] == 5 / 7
    assert s["median_abs_diff"] == [1.0, 1.5] and s["median_abs_diff_overall"] == 1.0


# ----------------------------------------------------------------- processes
@pytest.mark.slow  # statsmodels ARIMA fits in worker processes
def test_workers_import_no_jax_run_one_thread_and_close_ends_them(runs):
    if sys.platform == "linux":
        assert loaded(os.getpid())["jax"]  # the probe sees JAX where it is loaded: this process
    for run in runs.values():
        for seen in run["about"] or []:
            assert seen["statsmodels_arima"] and not seen["jax"]
            assert seen["threads"] == 1  # BLAS on one thread: no OpenBLAS thread pool
        assert run["processes"] and not any(p.is_alive() for p in run["processes"])
        assert all(p.daemon for p in run["processes"])


def _in_a_fresh_interpreter(code: str) -> None:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, JAX_PLATFORMS="cpu", OPENBLAS_NUM_THREADS="3"))
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_importing_the_pool_changes_nothing_in_the_process():
    # Named as a worker is, where the pool once set the BLAS variables when it was imported.
    _in_a_fresh_interpreter("""
        import multiprocessing, os, sys
        multiprocessing.current_process().name = "jaxwvae-statsmodels-0"
        env, main = dict(os.environ), sys.modules["__main__"]
        import jaxwvae.forecast.pool
        assert dict(os.environ) == env, "os.environ changed"
        assert sys.modules["__main__"] is main, "__main__ replaced"
        print("ok")
    """)


@pytest.mark.slow  # a worker process
def test_starting_workers_restores_the_environment_and_main():
    _in_a_fresh_interpreter("""
        import os, sys
        from jaxwvae.forecast import pool
        env, main = dict(os.environ), sys.modules["__main__"]
        with pool.Workers(1, (1, 1, 0), 1) as workers:
            assert dict(os.environ) == env and os.environ["OPENBLAS_NUM_THREADS"] == "3", "os.environ changed"
            assert sys.modules["__main__"] is main, "__main__ replaced"
            assert workers.gather([("own", 1)]) == [("ok",)]
        print("ok")
    """)


def _gone(pid: int) -> bool:
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # exited, not yet reaped by its new parent


@pytest.mark.slow  # statsmodels ARIMA fits in worker processes
def test_workers_end_with_a_killed_parent_script_that_imports_jax(tmp_path):
    # No __main__ guard and JAX imported first: spawn must not re-run the script in the workers.
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import os, signal, sys
        import jax
        from jaxwvae.config import SweepConfig
        from jaxwvae.forecast.statsmodels_rule import StatsmodelsRule
        rule = StatsmodelsRule(SweepConfig(forecaster="statsmodels"), 2, workers=1)
        lam, f = rule.update([1.0, 2.0], [1.0, 1.0])
        pid = rule.processes[0].pid
        print(pid, "/jaxlib/" in open(f"/proc/{pid}/maps").read(), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == -9, proc.stderr
    pid, jax_loaded = proc.stdout.split()
    assert jax_loaded == "False"
    deadline = time.time() + 20
    while not _gone(int(pid)) and time.time() < deadline:
        time.sleep(0.05)  # a poll interval: the worker's exit decides; the deadline only bounds the wait
    assert _gone(int(pid)), "the worker outlived its killed parent"


# ----------------------------------------------------------------- a real sweep
def small(data_dir, **changes):
    """tests/test_sweep.py's small config: 2,000 images, narrow model, 20 steps an epoch."""
    base = dict(seeds=(0, 1), epochs=1, train_size=2000, test_size=500, hidden=(64, 32), latent_dim=8,
                steps_per_call=5, checkpoint_every=0, data_dir=str(data_dir))
    base.update(changes)
    return SweepConfig(**base)


def load(out):
    results = json.loads((out / "results.json").read_text())
    with np.load(out / "history.npz") as h:
        return results, {k: h[k] for k in h.files}


@pytest.mark.slow  # sweep.run end to end, and resumed
def test_a_sweep_with_the_statsmodels_forecaster(data_dir, tmp_path):
    config = small(data_dir, forecaster="statsmodels", lam="uniform:0:5", checkpoint_every=5)
    out = tmp_path / "run"
    results, h = sweep.run(config, out, progress=False), load(out)[1]
    c = results["config"]["lambda_c"]
    expected = lambda_rule.next_lambda(h["lam"][:, :-1], h["t_forecast"][:, :-1], h["t_gap"][:, :-1], c=c, xp=np)
    np.testing.assert_array_equal(h["lam"][:, 1:], expected)
    assert h["t_forecast"].shape == (2, 20) and np.all(np.isfinite(h["t_forecast"]))
    np.testing.assert_array_equal(h["t_forecast"][:, :2], h["t_gap"][:, :2])  # warm-up
    np.testing.assert_array_equal(h["t_forecast"],
                                  reference_forecasts(h["t_gap"], ORDER, workers=1).astype(np.float32))

    # Resume from the checkpoint of step 15 (as after a kill there): the same history, bit for bit.
    steps = sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())
    assert steps[-2:] == [15, 20]
    shutil.rmtree(out / "checkpoints" / "20")
    (out / "results.json").unlink()
    (out / "history.npz").unlink()
    sweep.run(None, out, resume=True, progress=False)
    resumed = load(out)[1]
    for name in ("t_gap", "t_forecast", "lam", "loss"):
        np.testing.assert_array_equal(resumed[name], h[name], err_msg=name)
