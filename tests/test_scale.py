"""The replica axis across devices and processes gives the single-device results.

Several CPU devices are faked with ``--xla_force_host_platform_device_count``; two processes
talk over 127.0.0.1 with JAX's CPU (gloo) collectives. Every run is a real sweep.py process.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # real sweep.py processes on several (faked) devices and processes


def command(data_dir, out, seeds, *extra):
    return [sys.executable, str(REPO / "experiments" / "sweep.py"), "--seeds", str(seeds), "--data-dir",
            str(data_dir), "--out", str(out), "--train-size", "1000", "--test-size", "500", "--epochs", "2",
            "--hidden", "32,16", "--latent-dim", "4", "--steps-per-call", "5", "--no-progress", *extra]


def env_with_devices(n: int) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}".strip()
    return env


def run(cmd, env):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


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
    run(command(data_dir, out, 3), env_with_devices(1))
    return out


def test_three_seeds_on_four_devices_equal_one_device(single, data_dir, tmp_path):
    out = tmp_path / "four"
    run(command(data_dir, out, 3), env_with_devices(4))
    results, history = outputs(out)
    assert results["device"].startswith("cpu: 4 x")
    assert len(results["runs"]) == 3 and history["loss"].shape[0] == 3  # the padding replica never shows
    assert_same(single, out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_processes(cmd):
    """``cmd`` as processes 0 and 1 of a JAX distributed run on 127.0.0.1, one CPU device each."""
    port = free_port()
    procs = [subprocess.Popen([*cmd, "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                               "--process-id", str(k)],
                              env=env_with_devices(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in range(2)]
    try:
        errors = [p.communicate(timeout=300)[1] for p in procs]
    finally:
        for p in procs:  # a process that failed leaves its peer waiting: end both
            if p.poll() is None:
                p.kill()
                p.communicate()
    for p, err in zip(procs, errors):
        assert p.returncode == 0, err[-3000:]


def test_two_processes_equal_one_process(single, data_dir, tmp_path):
    out = tmp_path / "two"
    run_two_processes(command(data_dir, out, 3))
    results, _ = outputs(out)
    assert "over 2 processes" in results["device"]
    assert_same(single, out)
