"""One writer per run folder: a second real process is refused with one line naming the holder, and a
killed holder leaves no stuck lock. Each waits for an observable event (the holder's pid in the lock
file, config.json), never for a fixed time; the holder is paused with SIGSTOP so nothing races."""

import os
import signal
import subprocess
import time

import pytest

from jaxwvae.errors import UserError
from jaxwvae.runs import runlock
from tests.conftest import resume_command, sweep_command


def command(data_dir, out, *extra):
    return sweep_command(data_dir, out, *extra, epochs=2)


def start_holding(data_dir, out):
    """Start a run; return it once it holds the lock and has written config.json."""
    proc = subprocess.Popen(command(data_dir, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not ((out / "config.json").exists() and f"pid {proc.pid} " in _read(out / ".lock")):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.02)  # a poll interval: the lock file's content decides when to go on
    return proc


def _read(path):
    try:
        return path.read_text()
    except OSError:
        return ""


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow  # real sweep.py processes
def test_second_writer_is_refused_naming_the_holder(data_dir, tmp_path):
    out = tmp_path / "run"
    holder = start_holding(data_dir, out)
    os.kill(holder.pid, signal.SIGSTOP)  # paused: holds the lock for as long as the test needs
    try:
        before = snapshot(out)
        for cmd in (command(data_dir, out, "--overwrite"), command(data_dir, out), resume_command(out)):
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            assert proc.returncode == 2, proc.stderr
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
            assert lines[0].startswith(f"error: --out {out} is in use by a live run (pid {holder.pid} on "), lines[0]
            assert "sweep.py --seeds 2" in lines[0]  # the holder's command
        assert snapshot(out) == before  # the refused writers changed nothing, --overwrite included
    finally:
        os.kill(holder.pid, signal.SIGCONT)
    _, err = holder.communicate(timeout=300)
    assert holder.returncode == 0, err  # the holder finished undisturbed
    assert (out / "results.json").exists()


@pytest.mark.slow  # real sweep.py processes
def test_a_killed_holder_leaves_no_stuck_lock(data_dir, tmp_path):
    out = tmp_path / "run"
    holder = start_holding(data_dir, out)
    holder.kill()
    holder.communicate(timeout=60)  # reaps it and closes its stderr pipe
    proc = subprocess.run(resume_command(out), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (out / "results.json").exists()


def test_lock_in_one_process_is_exclusive_and_released(tmp_path):
    with runlock.RunLock(tmp_path / "run", ["first"]):
        with pytest.raises(UserError, match=rf"in use by a live run \(pid {os.getpid()} on .*: first\)"):
            runlock.RunLock(tmp_path / "run", ["second"])
        with pytest.raises(UserError, match="in use by a live run"):
            runlock.check_free(tmp_path / "run")
    runlock.check_free(tmp_path / "run")  # released: free again
    with runlock.RunLock(tmp_path / "run", ["third"]):
        assert (tmp_path / "run" / ".lock").read_text().endswith(": third\n")
