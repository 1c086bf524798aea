"""jaxwvae.runs.checkpoint.restore_params: a run's parameters, read without the optimizer state."""

import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from jaxwvae.core.models import VAE
from jaxwvae.engine.plan import make_plan
from jaxwvae.engine.program import Program
from jaxwvae.errors import UserError
from jaxwvae.evaluation import generate
from jaxwvae.runs import checkpoint, rundir
from tests.conftest import small


@pytest.fixture(scope="module")
def saved(data_dir, tmp_path_factory):
    """A run folder with two checkpoints of three replicas: step 3 (params x 2), then step 7 (the states)."""
    config = small(data_dir, seeds=(0, 1, 2)).resolved()
    states = Program.compile(config, make_plan(config, 2000, jax.device_count()), 784).init_states()
    out = tmp_path_factory.mktemp("run")
    history = {"loss": np.zeros((3, 7), np.float32)}
    saver = checkpoint.Checkpoints(out / rundir.CHECKPOINTS)
    saver.save(3, states.replace(params=jax.tree_util.tree_map(lambda a: 2 * a, states.params)), history, {}, 1.0)
    saver.save(7, states, history, {}, 2.0)
    saver.wait()
    saver.close()
    model = VAE(config.hidden, config.latent_dim, 784)
    like = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 784)), jax.random.PRNGKey(0))
    expected = jax.tree_util.tree_map(np.asarray, serialization.to_state_dict(states)["params"])
    return config, out, like, expected


def assert_bitwise_equal(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert isinstance(x, np.ndarray) and x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def test_restore_params_gives_the_newest_parameters_bit_for_bit(saved):
    _, out, like, expected = saved
    assert_bitwise_equal(checkpoint.restore_params(out, like), expected)


def test_restore_params_never_opens_the_optimizer_state(saved, tmp_path):
    # Rename the optimizer state in orbax's tree metadata ("opt_stale": the same length, so the recorded file
    # sizes still hold): its arrays are then looked up under names that do not exist.
    _, out, like, expected = saved
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    metadata = copy / rundir.CHECKPOINTS / "7" / "default" / "_METADATA"
    text = metadata.read_text()
    assert "opt_state" in text
    metadata.write_text(text.replace("opt_state", "opt_stale"))
    assert_bitwise_equal(checkpoint.restore_params(copy, like), expected)
    # ... while a read of the whole checkpoint fails (in a subprocess: orbax reports a failed read's other tasks
    # to sys.unraisablehook whenever they are collected, which pytest would blame on a later test).
    read_all = ("import sys, orbax.checkpoint as ocp; m = ocp.CheckpointManager(sys.argv[1]); "
                "m.restore(7, args=ocp.args.StandardRestore())")
    proc = subprocess.run([sys.executable, "-c", read_all, str((copy / rundir.CHECKPOINTS).absolute())],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode != 0 and "opt_stale" in proc.stderr, proc.stderr[-2000:]


def test_load_run_reads_the_parameters_of_the_real_replicas(saved, tmp_path):
    config, out, _, expected = saved
    out = shutil.copytree(out, tmp_path / "run")
    rundir.write_json(out / rundir.CONFIG, {"config": config.to_json(), "command": []})
    rundir.write_json(out / rundir.RESULTS, {"runs": []})
    loaded_config, model, params = generate.load_run(out)
    assert loaded_config == config and model.latent_dim == config.latent_dim
    assert_bitwise_equal(params, jax.tree_util.tree_map(lambda a: a[:3], expected))


def test_restore_params_says_what_is_wrong(saved, tmp_path):
    _, out, like, _ = saved
    with pytest.raises(UserError, match="holds no checkpoint"):
        checkpoint.restore_params(tmp_path, like)
    (tmp_path / rundir.CHECKPOINTS).mkdir()
    with pytest.raises(UserError, match="holds no checkpoint"):
        checkpoint.restore_params(tmp_path, like)
    wider = jax.eval_shape(VAE((64, 32, 16), 8, 784).init, jax.random.PRNGKey(0), jnp.zeros((1, 784)),
                           jax.random.PRNGKey(0))
    with pytest.raises(UserError, match="another model"):
        checkpoint.restore_params(out, wider)
