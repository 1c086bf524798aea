"""SIGTERM / SIGINT sent to a real ``experiments/sweep.py``: it stops at a chunk with a checkpoint, says how
to resume in one line, exits 143 / 130, and ``--resume`` ends identical to an uninterrupted run (CPU).

The run is long enough (2 seeds, the paper's 784-512-256 model, 2,000 images, 6 epochs: 120 steps in
chunks of 5, a few seconds of training) that a signal sent once the first progress line appears lands
while chunks remain. No test sleeps: each waits for something it can observe (a progress line on the
child's stderr, or the child's caught-signal mask in /proc).
"""

import json
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO, start_and_wait_for_training

TOTAL = 120

pytestmark = pytest.mark.slow  # real sweep.py processes, trained to the end


def command(data_dir, out):
    return [sys.executable, str(REPO / "experiments" / "sweep.py"), "--seeds", "2", "--data-dir", str(data_dir),
            "--out", str(out), "--train-size", "2000", "--test-size", "500", "--epochs", "6", "--latent-dim", "8",
            "--steps-per-call", "5", "--checkpoint-every", "0"]


def resume(out):
    proc = subprocess.run([sys.executable, str(REPO / "experiments" / "sweep.py"), "--resume", "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc


def outputs(out):
    results = json.loads((out / "results.json").read_text())
    results.pop("timing")  # wall-clock seconds: the only field allowed to differ
    with np.load(out / "history.npz") as h:
        return results, {k: h[k] for k in h.files}


def assert_same_run(a, b):
    results_a, history_a = outputs(a)
    results_b, history_b = outputs(b)
    assert results_a == results_b
    assert history_a.keys() == history_b.keys()
    for name in history_a:  # bit-identical on CPU: the same programs on the same inputs
        np.testing.assert_array_equal(history_a[name], history_b[name], err_msg=name)


def caught(pid: int) -> int:
    """The mask of signals process ``pid`` has a handler for (Linux /proc)."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    raise AssertionError("no SigCgt line")


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    proc = subprocess.run([*command(data_dir, out), "--no-progress"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_at_a_chunk_and_resume_equals_uninterrupted(uninterrupted, signum, status, data_dir, tmp_path):
    out = tmp_path / "run"
    proc, seen = start_and_wait_for_training(command(data_dir, out), TOTAL)
    proc.send_signal(signum)
    stdout, rest = proc.communicate(timeout=600)
    assert proc.returncode == status, rest
    err = "".join(seen) + rest
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1 and err.rstrip().endswith(lines[0]), err
    m = re.fullmatch(rf"interrupted by {signum.name} at step (\d+) of {TOTAL}; checkpoint saved; resume with: "
                     rf"python experiments/sweep.py --resume --out (.+)", lines[0])
    assert m and pathlib.Path(m[2]) == out.absolute(), lines[0]
    step = int(m[1])
    assert 0 < step < TOTAL and step % 5 == 0  # a chunk boundary before the end
    assert [p.name for p in (out / "checkpoints").iterdir()] == [str(step)]  # saved there (no periodic ones)
    assert not (out / "results.json").exists() and stdout == ""
    resume(out)
    assert_same_run(uninterrupted, out)


def test_second_signal_exits_at_once_and_loses_nothing(uninterrupted, data_dir, tmp_path):
    out = tmp_path / "run"
    proc, _ = start_and_wait_for_training(command(data_dir, out), TOTAL)
    term = 1 << (signal.SIGTERM - 1)
    assert caught(proc.pid) & term  # the CLI's handler is installed
    proc.send_signal(signal.SIGTERM)
    deadline = time.time() + 60
    while caught(proc.pid) & term:  # spin until the first signal was handled: the default action is back
        assert time.time() < deadline, "the CLI did not handle the first SIGTERM within 60 s"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGTERM  # ended by the signal itself, not by the graceful stop
    assert "interrupted by" not in err and "Traceback" not in err
    json.loads((out / "config.json").read_text())  # what was written is whole
    resume(out)  # from the checkpoint of the stop if it was complete, else from step 0
    assert_same_run(uninterrupted, out)
