"""A sweep killed with SIGKILL and resumed ends exactly like an uninterrupted one (CPU).

Each run is a real ``experiments/sweep.py`` process: 2 seeds, 1,000 images, 3 epochs of 10 steps,
a checkpoint every 5 steps.
"""

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def command(data_dir, out, *extra):
    return [sys.executable, str(REPO / "experiments" / "sweep.py"), "--seeds", "2", "--data-dir", str(data_dir),
            "--out", str(out), "--train-size", "1000", "--test-size", "500", "--epochs", "3", "--hidden", "32,16",
            "--latent-dim", "4", "--steps-per-call", "5", "--checkpoint-every", "5", "--no-progress", *extra]


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
    results = json.loads((out / "results.json").read_text())
    results.pop("timing")  # wall-clock seconds: the only field allowed to differ
    with np.load(out / "history.npz") as h:
        history = {k: h[k] for k in h.files}
    return results, history


def assert_same_run(a, b):
    results_a, history_a = outputs(a)
    results_b, history_b = outputs(b)
    assert results_a == results_b
    assert history_a.keys() == history_b.keys()
    for name in history_a:
        np.testing.assert_array_equal(history_a[name], history_b[name], err_msg=name)


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
    """The uninterrupted run of a forecaster (computed once per module)."""
    done = {}

    def get(forecaster):
        if forecaster not in done:
            out = tmp_path_factory.mktemp(f"uninterrupted-{forecaster}")
            run_to_end(command(data_dir, out, "--forecaster", forecaster))
            done[forecaster] = out
        return done[forecaster]

    return get


# The device forecaster at three kill points; the host forecaster (whose state lives in the
# checkpoint's host part) at one.
@pytest.mark.parametrize("forecaster, after_step", [("device", 0), ("device", 5), ("device", 20), ("host", 5)])
def test_kill_and_resume_equals_uninterrupted(reference, forecaster, after_step, data_dir, tmp_path):
    # after_step 0: killed once config.json exists (compiling, no checkpoint yet); else once the
    # checkpoint of that step is on disk.
    ref, extra = reference(forecaster), ["--forecaster", forecaster]
    out = tmp_path / "run"
    proc = start(command(data_dir, out, *extra))
    deadline = time.time() + 300

    def reached():
        return (out / "config.json").exists() and max(checkpoints(out), default=0) >= after_step

    while not reached() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    kill(proc)
    assert not (out / "results.json").exists()
    assert len(checkpoints(out)) <= 3  # 2 kept, and the oldest is pruned only once a new one is complete
    run_to_end(resume_command(out))
    assert_same_run(ref, out)
    assert checkpoints(out)[-2:] == [25, 30] and len(checkpoints(out)) == 2


def test_repeated_random_kills(reference, data_dir, tmp_path):
    ref, extra = reference("device"), ["--forecaster", "device"]
    out = tmp_path / "run"
    rng = random.Random(1234)
    fresh = command(data_dir, out, *extra)
    resume = resume_command(out)
    kills = 0
    for attempt in range(5):
        proc = start(fresh if not (out / "config.json").exists() else resume)
        time.sleep(rng.uniform(0.5, 7.0))
        if proc.poll() is not None:
            break
        kill(proc)
        kills += 1
    if not (out / "results.json").exists():
        run_to_end(resume if (out / "config.json").exists() else fresh)
    assert kills >= 1
    assert_same_run(ref, out)


def test_same_command_twice_gives_identical_results(reference, data_dir, tmp_path):
    ref, extra = reference("device"), ["--forecaster", "device"]
    run_to_end(command(data_dir, tmp_path / "again", *extra))
    assert_same_run(ref, tmp_path / "again")
