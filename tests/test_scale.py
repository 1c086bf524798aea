"""The replica axis across devices and processes gives the single-device results.

Several CPU devices are faked with ``--xla_force_host_platform_device_count``; two processes
talk over 127.0.0.1 with JAX's CPU (gloo) collectives. Every run is a real sweep.py process.
"""

import json
import sys

import numpy as np
import pytest

from tests.conftest import REPO, env_with_devices, run_ok, run_two_processes

pytestmark = pytest.mark.slow  # real sweep.py processes on several (faked) devices and processes


def command(data_dir, out, seeds, *extra):
    return [sys.executable, str(REPO / "experiments" / "sweep.py"), "--seeds", str(seeds), "--data-dir",
            str(data_dir), "--out", str(out), "--train-size", "1000", "--test-size", "500", "--epochs", "2",
            "--hidden", "32,16", "--latent-dim", "4", "--steps-per-call", "5", "--no-progress", *extra]


def outputs(out):
    results = json.loads((out / "results.json").read_text())
    with np.load(out / "history.npz") as h:
        history = {k: h[k] for k in h.files}
    return results, history


# XLA compiles a device's shard (here one replica) apart from the single-device batch of three, and
# may order a reduction differently: results agree to float32 rounding (measured: at most 5e-7
# relative on 2 epochs), not bit for bit. Seeds, λ and the divergence flags agree exactly.
RTOL = 1e-5


def assert_same(a, b):
    (ra, ha), (rb, hb) = outputs(a), outputs(b)
    assert len(ra["runs"]) == len(rb["runs"])
    for x, y in zip(ra["runs"], rb["runs"]):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], float):
                np.testing.assert_allclose(x[k], y[k], rtol=RTOL, err_msg=k)
            else:
                assert x[k] == y[k], k
    assert ha.keys() == hb.keys()
    for k in ha:
        if ha[k].dtype.kind in "US":  # per-replica grid values such as hyper_lam: identical
            np.testing.assert_array_equal(ha[k], hb[k], err_msg=k)
        else:
            np.testing.assert_allclose(ha[k], hb[k], rtol=RTOL, atol=1e-6, err_msg=k)
    np.testing.assert_array_equal(ha["lam"], hb["lam"])


@pytest.fixture(scope="module")
def single(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    run_ok(command(data_dir, out, 3), env_with_devices(1))
    return out


def test_three_seeds_on_four_devices_equal_one_device(single, data_dir, tmp_path):
    out = tmp_path / "four"
    run_ok(command(data_dir, out, 3), env_with_devices(4))
    results, history = outputs(out)
    assert results["device"].startswith("cpu: 4 x")
    assert len(results["runs"]) == 3 and history["loss"].shape[0] == 3  # the padding replica never shows
    assert_same(single, out)


def test_two_processes_equal_one_process(single, data_dir, tmp_path):
    out = tmp_path / "two"
    run_two_processes(command(data_dir, out, 3))
    results, _ = outputs(out)
    assert "over 2 processes" in results["device"]
    assert_same(single, out)
