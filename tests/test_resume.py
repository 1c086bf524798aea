"""A sweep killed with SIGKILL, or whose newest checkpoint is damaged, resumes to exactly the
uninterrupted run (CPU).

Each run is a real ``experiments/sweep.py`` process: 2 seeds, 1,000 images, 3 epochs of 10 steps,
a checkpoint every 5 steps. Kills wait for an observable event (a checkpoint folder appears; orbax
renames it into place only when complete), polled every 20 ms, never for a fixed time.
"""

import random
import shutil
import subprocess
import time

import pytest

from tests.conftest import assert_same_run, checkpoints, kill, resume_command, run_to_end, start, sweep_command

pytestmark = pytest.mark.slow  # real sweep.py processes, killed and resumed to the end


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
    """The uninterrupted run of a forecaster (computed once per module)."""
    done = {}

    def get(forecaster):
        if forecaster not in done:
            out = tmp_path_factory.mktemp(f"uninterrupted-{forecaster}")
            run_to_end(sweep_command(data_dir, out, "--forecaster", forecaster))
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
    proc = start(sweep_command(data_dir, out, *extra))
    deadline = time.time() + 300

    def reached():
        return (out / "config.json").exists() and max(checkpoints(out), default=0) >= after_step

    while not reached() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)  # a poll interval: config.json or the checkpoint's appearance decides when to kill
    assert proc.poll() is None, "the run ended before it could be killed"
    assert reached(), f"no checkpoint of step {after_step} within 300 s"
    kill(proc)
    assert not (out / "results.json").exists()
    assert len(checkpoints(out)) <= 3  # 2 kept, and the oldest is pruned only once a new one is complete
    run_to_end(resume_command(out))
    assert_same_run(ref, out)
    assert checkpoints(out)[-2:] == [25, 30] and len(checkpoints(out)) == 2


def wait_for_checkpoint(proc, out, step: int, deadline: float) -> bool:
    """True once a checkpoint at or past ``step`` is on disk while ``proc`` runs; False if it ended first."""
    while max(checkpoints(out), default=-1) < step:
        if proc.poll() is not None or time.time() > deadline:
            return False
        time.sleep(0.02)  # a poll interval: the checkpoint's appearance decides when to kill
    return proc.poll() is None


def test_repeated_random_kills(reference, data_dir, tmp_path):
    # Each attempt is killed once the checkpoint of a step drawn at random (past the newest one) is on disk.
    ref, extra = reference("device"), ["--forecaster", "device"]
    out = tmp_path / "run"
    rng = random.Random(1234)
    fresh = sweep_command(data_dir, out, *extra)
    resume = resume_command(out)
    kills = 0
    deadline = time.time() + 600
    while max(checkpoints(out), default=0) < 25 and kills < 4:
        target = rng.randrange(max(checkpoints(out), default=0) + 5, 30, 5)
        proc = start(fresh if not (out / "config.json").exists() else resume)
        reached = wait_for_checkpoint(proc, out, target, deadline)
        if not reached:
            proc.wait()
            break
        kill(proc)
        kills += 1
    if not (out / "results.json").exists():
        run_to_end(resume)
    assert kills >= 2
    assert_same_run(ref, out)


# ---------------------------------------------------------------------- damaged checkpoints
def finished_run_without_outputs(ref, tmp_path):
    """A copy of a finished run with its results removed: resuming it restores the newest checkpoint (30)."""
    out = tmp_path / "run"
    shutil.copytree(ref, out)
    (out / "results.json").unlink()
    (out / "history.npz").unlink()
    assert checkpoints(out) == [25, 30]
    return out


def truncate_arrays(step_dir):
    """Cut every array data file to half its size (a full disk, or a write cut short)."""
    files = [p for p in step_dir.rglob("*") if p.is_file() and p.parent.name == "d"]
    assert files
    for p in files:
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def delete_manifests(step_dir):
    files = list(step_dir.rglob("manifest.ocdbt"))
    assert files
    for p in files:
        p.unlink()


DAMAGE = {
    "truncated arrays": lambda step_dir, other: truncate_arrays(step_dir),
    "missing files": lambda step_dir, other: delete_manifests(step_dir),
    # the host forecaster's checkpoint: same shapes of states and history, another host-state tree
    "another config's checkpoint": lambda step_dir, other: (shutil.rmtree(step_dir),
                                                            shutil.copytree(other / "checkpoints" / "30", step_dir)),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_unreadable_newest_checkpoint_falls_back_to_the_previous(reference, damage, tmp_path):
    ref = reference("device")
    out = finished_run_without_outputs(ref, tmp_path)
    DAMAGE[damage](out / "checkpoints" / "30", reference("host"))
    proc = run_to_end(resume_command(out))
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: checkpoint 30 unreadable (") \
        and lines[0].endswith("; resuming from checkpoint 25"), proc.stderr
    assert_same_run(ref, out)  # trained again from step 25
    assert checkpoints(out) == [25, 30] and (out / "checkpoints-unreadable" / "30").is_dir()


def test_a_checkpoint_torn_by_a_kill_during_its_write_is_ignored(reference, tmp_path):
    # Orbax writes into <step>.orbax-checkpoint-tmp-* and renames when complete: a kill leaves only that.
    ref = reference("device")
    out = finished_run_without_outputs(ref, tmp_path)
    torn = out / "checkpoints" / "30.orbax-checkpoint-tmp-1"
    (out / "checkpoints" / "30").rename(torn)
    truncate_arrays(torn)
    proc = run_to_end(resume_command(out))
    assert proc.stderr == ""  # nothing unreadable was tried: the step was never complete
    assert_same_run(ref, out)


def test_no_readable_checkpoint_says_so_and_how_to_start_again(reference, tmp_path):
    out = finished_run_without_outputs(reference("device"), tmp_path)
    for step in (25, 30):
        truncate_arrays(out / "checkpoints" / str(step))
    proc = subprocess.run(resume_command(out), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: --resume: no readable checkpoint in ") and "--overwrite" in lines[0]
    assert checkpoints(out) == [25, 30] and not (out / "results.json").exists()  # nothing moved or written


def test_same_command_twice_gives_identical_results(reference, data_dir, tmp_path):
    ref, extra = reference("device"), ["--forecaster", "device"]
    run_to_end(sweep_command(data_dir, tmp_path / "again", *extra))
    assert_same_run(ref, tmp_path / "again")
