"""Population-based training inside the sweep: the round on real states, the records, determinism, resume."""

import json
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxwvae.config import SweepConfig
from jaxwvae.engine import sweep
from jaxwvae.engine.plan import load_split, make_plan
from jaxwvae.engine.population import Population
from jaxwvae.engine.program import Program
from jaxwvae.replica.state import hyperparameter
from tests.conftest import (REPO, assert_same_run, checkpoints, kill, resume_command, run_to_end, start,
                            start_and_wait_for_training)

GRID = ((("lam", "0.5"),), (("lam", "1"),), (("lam", "2"),), (("lam", "4"),))


def small(data_dir, **changes):
    base = dict(seeds=(0, 1), epochs=1, train_size=1000, test_size=500, hidden=(32, 16), latent_dim=4,
                steps_per_call=5, checkpoint_every=0, data_dir=str(data_dir), grid=GRID, pbt_every=5,
                validation_size=500, lambda_rule="fixed")
    base.update(changes)
    return SweepConfig(**base).resolved()


def test_a_round_copies_whole_states_and_leaves_the_others_untouched(data_dir):
    config = small(data_dir, pbt_fraction=0.5, pbt_resample=0.0)
    train_u8 = load_split(config, "train")
    plan = make_plan(config, len(train_u8), jax.device_count())
    program = Program.compile(config, plan, train_u8.shape[1])
    states = program.init_states()
    states, _ = program.run(states, program.put_images(train_u8), program.orders(states, 0), 0)
    population = Population.build(config, program, load_split(config, "validation"))
    fitness = population.fitness(states)
    before = jax.tree_util.tree_map(np.array, states)
    after, record = population.round(states, 0)
    after = jax.tree_util.tree_map(np.array, after)
    donor = record["pbt_donor"].astype(int)
    np.testing.assert_array_equal(record["pbt_fitness"], fitness)
    for members in population.members:  # seed j at each of the 4 points; bottom 2 copy one of the top 2
        order = members[np.argsort(fitness[members], kind="stable")]
        assert set(members[donor[members] >= 0]) == set(order[2:])
        assert set(donor[order[2:]]) <= set(order[:2])
    for r in range(program.plan.padded):
        source = donor[r] if donor[r] >= 0 else r
        leaves_after = jax.tree_util.tree_leaves_with_path(jax.tree_util.tree_map(lambda x: x[r], after))
        leaves_donor = jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x: x[source], before))
        for (path, a), b in zip(leaves_after, leaves_donor):
            if donor[r] >= 0 and path and "lam" == getattr(path[0], "name", None):
                continue  # the evolving field: explored below
            np.testing.assert_array_equal(a, b, err_msg=f"replica {r}: {jax.tree_util.keystr(path)}")
    lam_before = np.asarray(hyperparameter(before, "lam"))
    lam_after = np.asarray(hyperparameter(after, "lam"))
    for r in np.flatnonzero(donor >= 0):  # resample 0: the donor's λ times 0.8 or 1.2
        assert lam_after[r] in (np.float32(lam_before[donor[r]] * np.float32(0.8)),
                                np.float32(lam_before[donor[r]] * np.float32(1.2)))
    np.testing.assert_array_equal(lam_after[donor < 0], lam_before[donor < 0])


@pytest.mark.slow  # three small sweeps
def test_a_pbt_sweep_records_its_rounds_and_repeats_exactly(data_dir, tmp_path):
    config = small(data_dir)
    a = sweep.run(config, tmp_path / "a", progress=False)
    b = sweep.run(config, tmp_path / "b", progress=False)
    assert a["pbt"] == b["pbt"]  # deterministic: the same events and winners
    pbt = a["pbt"]
    assert pbt["steps"] == [5] and pbt["settings"]["fields"] == ["lam"] and pbt["settings"]["members"] == 4
    assert len(pbt["events"]) == 2  # 2 populations, a bottom of 1 (q = 0.25 of 4)
    for e in pbt["events"]:
        assert e["recipient"] % 2 == e["donor"] % 2 == e["population"]  # within the seed's population
        assert 0 <= e["after"]["lam"] <= 1e6
    assert [w["population"] for w in pbt["winners"]] == [0, 1]
    with np.load(tmp_path / "a" / "history.npz") as h:
        assert h["pbt_fitness"].shape == h["pbt_donor"].shape == h["pbt_lam"].shape == (8, 1)
        assert h["pbt_donor"].dtype == np.int64 and sorted(h["pbt_donor"][:, 0]).count(-1) == 6
        assert h["pbt_step"].tolist() == [5]
    plain = sweep.run(small(data_dir, pbt_every=0), tmp_path / "plain", progress=False)
    assert "pbt" not in plain  # without PBT: no block, the grid as before


def pbt_command(data_dir, *, checkpoint_every: int):
    """A small PBT sweep.py run: 2 populations of 4, 3 epochs of 10 steps, a round every 5."""
    return [sys.executable, str(REPO / "experiments" / "sweep.py"), "--seeds", "2", "--grid", "lam=0.5,1,2,4",
            "--pbt-every", "5", "--validation-size", "500", "--train-size", "1000", "--test-size", "500", "--epochs",
            "3", "--hidden", "32,16", "--latent-dim", "4", "--steps-per-call", "5", "--checkpoint-every",
            str(checkpoint_every), "--lambda-rule", "fixed", "--data-dir", str(data_dir)]


@pytest.mark.slow  # real sweep.py processes
def test_killed_pbt_run_resumes_to_the_same_events(data_dir, tmp_path):
    cmd = [*pbt_command(data_dir, checkpoint_every=5), "--no-progress"]
    run_to_end([*cmd, "--out", str(tmp_path / "ref")])
    out = tmp_path / "run"
    proc = start([*cmd, "--out", str(out)])
    while max(checkpoints(out), default=0) < 10 and proc.poll() is None:
        pass  # busy-poll: the checkpoint's appearance decides when to kill
    assert proc.poll() is None, "the run ended before it could be killed"
    kill(proc)
    run_to_end(resume_command(out))
    assert_same_run(tmp_path / "ref", out)
    events = json.loads((out / "results.json").read_text())["pbt"]["events"]
    assert {e["step"] for e in events} <= {5, 10, 15, 20, 25}


@pytest.mark.slow  # real sweep.py processes
def test_sigterm_pbt_run_resumes_to_the_same_events(data_dir, tmp_path):
    # No periodic checkpoints: the only one is the stop's, saved after the round of its step.
    cmd = pbt_command(data_dir, checkpoint_every=0)
    run_to_end([*cmd, "--no-progress", "--out", str(tmp_path / "ref")])
    out = tmp_path / "run"
    proc, _ = start_and_wait_for_training([*cmd, "--out", str(out)], total=30)  # the first line: step 5's round ran
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 143, err
    stopped = checkpoints(out)
    assert len(stopped) == 1 and 5 <= stopped[0] < 30 and stopped[0] % 5 == 0, stopped  # a round's step
    assert not (out / "results.json").exists()
    run_to_end(resume_command(out))
    assert_same_run(tmp_path / "ref", out)
    steps = [e["step"] for e in json.loads((out / "results.json").read_text())["pbt"]["events"]]
    assert stopped[0] in steps  # the round of the stop's step ran once, before its checkpoint


@pytest.mark.slow  # trains a small feature CNN and a sweep
def test_the_fid_fitness_runs_through_the_command_line(data_dir, tmp_path):
    out = tmp_path / "fid"
    run_to_end([sys.executable, str(REPO / "experiments" / "sweep.py"), "--seeds", "1", "--grid", "lam=0.5,2",
                "--pbt-every", "5", "--validation-size", "500", "--pbt-fitness", "fid", "--feature-train-size", "2000",
                "--feature-epochs", "1", "--train-size", "1000", "--test-size", "500", "--epochs", "1", "--hidden",
                "32,16", "--latent-dim", "4", "--steps-per-call", "5", "--lambda-rule", "fixed", "--data-dir",
                str(data_dir), "--out", str(out), "--no-progress"])
    pbt = json.loads((out / "results.json").read_text())["pbt"]
    assert pbt["settings"]["fitness"] == "fid" and len(pbt["events"]) == 1
    assert all(v is not None and v > 0 for v in pbt["final_fitness"])  # a finite FID per member


@pytest.mark.parametrize("extra, message", [
    (["--pbt-every", "10", "--validation-size", "100"], "a population of one"),
    (["--grid", "lam=1,2", "--pbt-every", "10"], "--validation-size"),
    (["--grid", "lam=1,2", "--pbt-every", "10", "--validation-size", "100", "--pbt-fraction", "0.6"], "(0, 0.5]"),
    (["--grid", "lam=1,2", "--pbt-every", "10", "--validation-size", "100", "--pbt-fields", "hidden"],
     "cannot evolve"),
    (["--grid", "lam=1,2", "--pbt-every", "10", "--validation-size", "100", "--pbt-fitness", "fid"], "at least 500"),
    (["--grid", "lam=1,2", "--pbt-every", "10", "--validation-size", "100", "--pbt-fitness", "best"], "pbt-fitness"),
    (["--grid", "lam=1,2", "--pbt-every", "10", "--validation-size", "100", "--train-size", "1000", "--epochs", "1"],
     "no PBT round would happen"),
])
def test_bad_pbt_flags_are_one_line_and_exit_2(extra, message, data_dir, tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "experiments" / "sweep.py"), "--data-dir", str(data_dir),
                           "--out", str(tmp_path / "x"), *extra], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2, proc.stderr
