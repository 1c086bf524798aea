"""The core in-process on tiny shapes, in seconds: one training step, the three objectives against
float64 references of their formulas, the σ <= 1 cap, and a checkpoint round trip.

The slow tier runs the same code end to end (whole sweeps, often in subprocesses); these tests are
the fast tier's coverage of it (``pytest -m "not slow"``).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxwvae import config as config_lib
from jaxwvae.config import grid
from jaxwvae import losses
from jaxwvae.core import lambda_rule, objectives
from jaxwvae.core.keys import STEP_STREAM, stream
from jaxwvae.core.models import VAE, VAEOutputs
from jaxwvae.replica import train
from jaxwvae.replica.state import create_replica, optimizer
from jaxwvae.runs import checkpoint

PIXELS, HIDDEN, LATENT, BATCH = 16, (8,), 2, 4


def hyper(lam=1.0, sigma_max=np.inf, learning_rate=1e-2):
    """One replica's point values (as :func:`jaxwvae.config.grid.replica_table` gives them), Section 3's rule."""
    rule = lambda_rule.RuleHyper.default(xp=np)
    return {"lam_low": np.float32(lam), "lam_high": np.float32(lam), "learning_rate": np.float32(learning_rate),
            "sigma_max": np.float32(sigma_max), **rule._asdict()}


@functools.cache
def creator(objective="w"):
    """``(seed, hyper) -> ReplicaState``, compiled once per objective (eager init is slow on a loaded CPU)."""
    return jax.jit(functools.partial(create_replica, model=VAE(HIDDEN, LATENT, PIXELS), tx=optimizer(),
                                     objective=objectives.get(objective).fn,
                                     lambda_rule=lambda_rule.arima((1, 1, 0)), in_dim=PIXELS))


def tiny_state(seed=0, objective="w", **values):
    return creator(objective)(jnp.int32(seed), hyper(**values))


@jax.jit
def loss_before_step(state, x):
    """The objective at the state's parameters with the keys ``train_step`` draws at this step."""
    key_z, key_objective = jax.random.split(stream(state.key, STEP_STREAM, state.step))
    outputs = state.apply_fn(state.params, x, key_z, state.sigma_max)
    return state.objective(x, outputs, state.lam, key_objective)[0]


def batch(seed=0, n=BATCH):
    return jnp.asarray(np.random.default_rng(seed).random((n, PIXELS), dtype=np.float32))


# ---------------------------------------------------------------------- one training step
def test_train_step_compiles_once_moves_the_parameters_and_reports_its_loss():
    traces = []

    def counted(state, x):
        traces.append(1)
        return train.train_step(state, x)

    step = jax.jit(counted)
    state = tiny_state()
    first = state
    for t in range(3):  # a new state every step (step, λ, forecaster, Adam): same shapes and dtypes, one trace
        x = batch(t)
        expected = loss_before_step(state, x)
        state, metrics = step(state, x)
        assert np.isfinite(metrics["loss"]) and int(state.diverged_step) == -1
        # the loss of the parameters before the update, with the step's own keys; two programs of the same
        # float32 operations, fused differently: a few ulps of a loss of ~11 nats
        np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)
    assert len(traces) == 1
    assert int(state.step) == 3
    moved = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), first.params, state.params)
    assert all(jax.tree_util.tree_leaves(moved))  # every kernel and bias took Adam steps
    assert set(train.STEP_METRICS) <= set(metrics)


def test_a_non_finite_loss_freezes_the_replica():
    state = tiny_state(lam=np.inf)  # λ = inf: the loss is infinite at the first step
    after, metrics = jax.jit(train.train_step)(state, batch())
    assert int(after.diverged_step) == 0 and int(after.step) == 1
    assert np.isnan(metrics["loss"])
    for a, b in zip(jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(after.params)):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- the objectives, against float64 references
def outputs64(seed=1, n=BATCH, shift=0.0):
    rng = np.random.default_rng(seed)
    return {"logits": rng.normal(0, 2, (n, PIXELS)), "mu": rng.normal(shift, 1, (n, LATENT)),
            "logvar": rng.normal(0, 1, (n, LATENT)), "z": rng.normal(shift, 1, (n, LATENT))}


def bce64(logits, x):
    """-Σ [x log p + (1 - x) log(1 - p)], p = sigmoid(logit): the textbook form, not the library's softplus one."""
    p = 1 / (1 + np.exp(-logits))
    return np.mean(-np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=-1))


def gaussian_terms64(mu, logvar):
    sigma = np.exp(logvar / 2)
    w2 = np.mean(np.sum(mu**2 + (sigma - 1) ** 2, -1))  # eq. (3)
    kl = np.mean(0.5 * np.sum(mu**2 + sigma**2 - 1 - logvar, -1))  # eq. (4)
    return w2, kl


def mmd64(z, zp, scales=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)):
    """Tolstikhin et al.'s IMQ estimator by double loops: U-statistics within, all pairs across."""
    n, d = z.shape
    total = 0.0
    for s in scales:
        c = s * 2.0 * d

        def k(a, b):
            return c / (c + np.sum((a - b) ** 2))

        within = sum(k(z[i], z[j]) + k(zp[i], zp[j]) for i in range(n) for j in range(n) if i != j)
        cross = sum(k(z[i], zp[j]) for i in range(n) for j in range(n))
        total += within / (n * (n - 1)) - 2 * cross / n**2
    return total


@pytest.mark.parametrize("name", ["w", "kl", "wae"])
def test_each_objective_is_its_formula(name):
    ref = outputs64(shift=1.5 if name == "wae" else 0.0)  # codes away from the prior: MMD well above 0
    outputs = VAEOutputs(**{k: jnp.asarray(v, jnp.float32) for k, v in ref.items()})
    ref = {k: np.asarray(v, np.float64) for k, v in outputs._asdict().items()}  # the float32 inputs, exactly
    x = np.asarray(batch(2), np.float64)
    lam, key = 0.7, jax.random.key(3)
    loss, metrics = objectives.get(name).fn(jnp.asarray(x, jnp.float32), outputs, jnp.float32(lam), key)

    w2, kl = gaussian_terms64(ref["mu"], ref["logvar"])
    if name == "wae":
        z_prior = np.asarray(jax.random.normal(key, outputs.z.shape, outputs.z.dtype), np.float64)  # its own draw
        rec = objectives.WAE_COST_SCALE * np.mean(np.sum((1 / (1 + np.exp(-ref["logits"])) - x) ** 2, -1))
        expected = {"rec": rec, "mmd": mmd64(ref["z"], z_prior), "loss": rec + lam * mmd64(ref["z"], z_prior)}
    else:
        rec = bce64(ref["logits"], x)
        expected = {"rec": rec, "loss": rec + lam * (w2 if name == "w" else kl)}
    expected.update(w2=w2, kl=kl, t_gap=w2 - kl)
    assert set(expected) <= set(metrics) and metrics["loss"] is loss
    for k, v in expected.items():
        # float32 against float64. The Gaussian terms and the reconstruction are means of 4 sums of 2 or 16
        # terms: measured <= 2e-7 relative over 20 draws. The MMD is a difference of O(1) float32 kernel
        # means: measured <= 7e-7 absolute. A wrong term (a missing 1/2, σ for σ², the diagonal kept in a
        # U-statistic) moves a value by more than 1e-2.
        np.testing.assert_allclose(float(metrics[k]), v, rtol=1e-5, atol=5e-6, err_msg=k)


# ---------------------------------------------------------------------- σ <= 1
def test_the_cap_keeps_every_sigma_at_most_one():
    model = VAE(HIDDEN, LATENT, PIXELS)
    x, key = batch(4, n=64), jax.random.key(5)
    params = model.init(jax.random.key(0), x[:1], key)
    # push log σ² up so that the uncapped encoder gives σ > 1 for many codes: the cap has work to do
    bias = params["params"]["encoder"]["Dense_1"]["bias"]
    params["params"]["encoder"]["Dense_1"]["bias"] = bias.at[LATENT:].add(0.5)
    free = model.apply(params, x, key, jnp.float32(np.inf))
    assert np.mean(free.logvar > 0) > 0.5
    capped = model.apply(params, x, key, jnp.float32(1.0))  # sigma_max = 1: the per-replica cap
    relu = -jax.nn.relu(-free.logvar)  # the paper's adjusted ReLU on the uncapped encoder's output
    np.testing.assert_array_equal(capped.logvar, relu)
    half = model.apply(params, x, key, jnp.float32(0.5))  # another cap: σ <= 0.5 up to log's rounding
    np.testing.assert_allclose(np.exp(np.asarray(half.logvar, np.float64) / 2).max(), 0.5, rtol=1e-6)
    for out in (capped,):
        sigma = np.exp(np.asarray(out.logvar, np.float64) / 2)
        assert np.all(sigma <= 1.0)
        np.testing.assert_array_equal(out.logvar, np.minimum(free.logvar, 0.0))
        np.testing.assert_array_equal(out.mu, free.mu)
        # with every σ <= 1 and μ = 0, T <= 0 (paper, section 3)
        assert np.all(np.asarray(jax.vmap(lambda lv: losses.t_gap(0 * lv, lv))(out.logvar)) <= 0)
    # the config's switch becomes that cap in the replica's state
    table = grid.replica_table(config_lib.smoke(seeds=(0,), sigma_max=1.0).resolved(), 1)
    assert table["sigma_max"].tolist() == [1.0]
    assert np.isinf(grid.replica_table(config_lib.smoke(seeds=(0,)).resolved(), 1)["sigma_max"]).all()


def test_a_capped_replica_stays_capped_through_training():
    state = tiny_state(sigma_max=1.0, learning_rate=0.1)  # large steps, so some log σ² are pushed upwards
    step = jax.jit(train.train_step)
    for t in range(5):
        state, _ = step(state, batch(t))
    out = state.apply_fn(state.params, batch(9, n=64), jax.random.key(1), state.sigma_max)
    assert np.all(np.asarray(out.logvar) <= 0.0)


# ---------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(tmp_path):
    stacked = jax.jit(jax.vmap(creator(), in_axes=(0, None)))  # two replicas, as a sweep holds them
    states = stacked(jnp.arange(2, dtype=jnp.int32), hyper())
    states, _ = jax.jit(jax.vmap(train.train_step))(states, jnp.stack([batch(0), batch(1)]))  # Adam moments ≠ 0
    history = {"loss": np.random.default_rng(0).random((2, 7), dtype=np.float32), "lam": np.ones((2, 7), np.float32)}
    host = {"forecasts": np.arange(6.0).reshape(2, 3)}
    ckpt = checkpoint.Checkpoints(tmp_path / "checkpoints")
    try:
        ckpt.save(7, states, history, host, train_s=12.5)
        ckpt.wait()
        template = stacked(jnp.arange(10, 12, dtype=jnp.int32), hyper())  # other values, the same layout
        blank = {k: np.zeros_like(v) for k, v in history.items()}
        step, restored, got_history, got_host, train_s = ckpt.restore_latest(
            template, blank, {k: np.zeros_like(v) for k, v in host.items()})
    finally:
        ckpt.close()
    assert step == 7 and train_s == 12.5
    leaves, want = jax.tree_util.tree_leaves_with_path(restored), jax.tree_util.tree_leaves_with_path(states)
    assert [p for p, _ in leaves] == [p for p, _ in want] and len(leaves) > 10
    for (path, a), (_, b) in zip(leaves, want):
        assert a.dtype == b.dtype, jax.tree_util.keystr(path)
        np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))
    assert restored.objective is states.objective  # the static fields come from the template
    for k in history:
        np.testing.assert_array_equal(got_history[k], history[k])
    np.testing.assert_array_equal(got_host["forecasts"], host["forecasts"])
