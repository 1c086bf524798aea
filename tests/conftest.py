"""Shared fixtures and helpers. Tests run on CPU with JAX's optimisations mostly off (fast compiles).

A test file imports the helpers it shares with others from here (``from tests.conftest import small``),
never from another test file.
"""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jaxwvae import config as config_lib  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_disable_most_optimizations", True)

REPO = pathlib.Path(__file__).resolve().parents[1]


def _find_data_dir() -> pathlib.Path:
    """The IDX folders (mnist/, fashion_mnist/) the tests read: $JAXWVAE_TEST_DATA or ../shared/data."""
    candidates = [os.environ.get("JAXWVAE_TEST_DATA"), REPO.parent / "shared" / "data"]
    for c in candidates:
        if c and (pathlib.Path(c) / "mnist" / "train-labels-idx1-ubyte.gz").exists():
            return pathlib.Path(c)
    raise RuntimeError(
        "test data not found: set JAXWVAE_TEST_DATA to a folder holding mnist/ and fashion_mnist/ "
        "IDX files (the project's ../shared/data)"
    )


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    return _find_data_dir()


@pytest.fixture
def key():
    return jax.random.key(0)


# A sweep in the test process (sweep.run, the engine's chunks)


def small(data_dir, **changes):
    """2,000 training images, 500 test images, a narrow model: a few seconds on CPU."""
    base = dict(seeds=(0, 1), epochs=1, train_size=2000, test_size=500, hidden=(64, 32), latent_dim=8,
                steps_per_call=5, checkpoint_every=0, data_dir=str(data_dir))
    base.update(changes)
    return config_lib.SweepConfig(**base)


def load(out):
    """A finished run's ``(results.json, history.npz)``."""
    results = json.loads((out / "results.json").read_text())
    with np.load(out / "history.npz") as h:
        history = {k: h[k] for k in h.files}
    return results, history


# A real experiments/sweep.py process


def sweep_command(data_dir, out, *extra, epochs: int = 3):
    """A small real sweep: 2 seeds, 1,000 images, a narrow model, a checkpoint every 5 steps."""
    return [sys.executable, str(REPO / "experiments" / "sweep.py"), "--seeds", "2", "--data-dir", str(data_dir),
            "--out", str(out), "--train-size", "1000", "--test-size", "500", "--epochs", str(epochs),
            "--hidden", "32,16", "--latent-dim", "4", "--steps-per-call", "5", "--checkpoint-every", "5",
            "--no-progress", *extra]


def resume_command(out):
    return [sys.executable, str(REPO / "experiments" / "sweep.py"), "--resume", "--out", str(out), "--no-progress"]


def run_to_end(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc


def start(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def checkpoints(out) -> list[int]:
    folder = out / "checkpoints"
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.exists() else []


def kill(proc):
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def outputs(out):
    """:func:`load` less the timing."""
    results, history = load(out)
    results.pop("timing")  # wall-clock seconds: the only field allowed to differ
    return results, history


def assert_same_run(a, b):
    results_a, history_a = outputs(a)
    results_b, history_b = outputs(b)
    assert results_a == results_b
    assert history_a.keys() == history_b.keys()
    for name in history_a:
        np.testing.assert_array_equal(history_a[name], history_b[name], err_msg=name)


def start_and_wait_for_training(cmd, total: int):
    """Start the sweep of ``total`` steps and return once it prints its first progress line (a chunk has run)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if re.search(rf"\] [1-9]\d*/{total} steps", line):
            return proc, seen
    proc.wait()
    raise AssertionError(f"the run ended before training started: {''.join(seen)}")


# several (faked) devices and real processes: tests/test_scale.py, tests/test_pbt_scale.py
def env_with_devices(n: int) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}".strip()
    return env


def run_ok(cmd, env):
    """Run ``cmd`` with ``env``; fail the test with its stderr's end unless it exits 0."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


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
