"""Population-based training's pure core: truncation selection, exploit and explore over the replica axis.

The references are independent: the ranking is Python's ``sorted`` on ``(not finite, fitness, replica)``,
the copy is NumPy fancy indexing, and the allowed explored values are computed in NumPy float32.
Frequencies are Monte Carlo over fixed keys (so each test is deterministic); each tolerance is five
binomial standard deviations, a false alarm of about 6e-7 per count for a correct sampler, while a
sampler off by the smallest bias that matters here (a probability off by 0.05) fails by far more.
"""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxwvae.config import grid
from jaxwvae.config.sweep_config import SweepConfig
from jaxwvae.core import keys, pbt

REPO = pathlib.Path(__file__).resolve().parents[1]


# Most tests call the functions jitted (one compile is quicker than dispatching each operation); the
# round test compares jitted with eager, and the doctests run eagerly.
select_jit = jax.jit(pbt.select_donors, static_argnames="fraction")  # members traced: any layout of one shape


def explore_jit(key, values, replaced, **kw):
    return jax.jit(lambda k, v, r: pbt.explore(k, v, r, **kw))(key, values, replaced)


def reference_ranking(fitness, members):
    """Per population, its members best first: finite before non-finite, then fitness, then replica index."""
    fitness = np.asarray(fitness, np.float64)
    return [sorted(row.tolist(), key=lambda r: (not np.isfinite(fitness[r]),
                                                  fitness[r] if np.isfinite(fitness[r]) else 0.0, r))
            for row in np.asarray(members)]


def random_layout(rng, p, m, padding):
    """``p`` populations of ``m`` distinct replicas in random order among ``p * m + padding``."""
    perm = rng.permutation(p * m + padding).astype(np.int32)
    return perm[:p * m].reshape(p, m), p * m + padding


def random_fitness(rng, r):
    """Fitness with many ties (small integers), NaN, +inf and -inf."""
    f = rng.integers(0, 4, r).astype(np.float32)
    specials = rng.choice(r, size=min(r, 3), replace=False)
    f[specials] = np.array([np.nan, np.inf, -np.inf], np.float32)[: len(specials)]
    return f


@pytest.mark.parametrize("m, fraction, n", [
    (1, 0.25, 0), (2, 0.25, 1), (2, 0.5, 1), (3, 0.25, 1), (6, 0.25, 1), (6, 0.5, 3), (8, 0.25, 2),
    (30, 0.25, 7), (100, 0.29, 29), (7, 0.5, 3),
])
def test_truncation_size_is_the_floor_at_least_one_and_at_most_half(m, fraction, n):
    assert pbt.truncation_size(m, fraction) == n


@pytest.mark.parametrize("fraction", [0.0, -0.1, 0.51, 1.0, float("nan")])
def test_a_fraction_outside_zero_half_is_refused(fraction):
    with pytest.raises(ValueError, match="fraction"):
        pbt.truncation_size(4, fraction)


@pytest.mark.parametrize("p, m, fraction, padding", [
    (3, 1, 0.25, 2), (2, 2, 0.25, 0), (3, 6, 0.25, 1), (3, 6, 0.5, 3), (2, 8, 0.25, 0), (1, 5, 0.5, 2),
])
def test_selection_takes_exactly_the_bottom_and_the_top_of_the_reference_ranking(p, m, fraction, padding):
    rng = np.random.default_rng(1000 * p + m)
    n = pbt.truncation_size(m, fraction)
    for trial in range(4):
        members, r = random_layout(rng, p, m, padding)
        fitness = random_fitness(rng, r)
        donor, replaced = map(np.asarray, select_jit(jax.random.key(trial), fitness, members, fraction=fraction))
        assert donor.dtype == np.int32 and replaced.dtype == np.bool_ and donor.shape == replaced.shape == (r,)
        expected = np.zeros(r, bool)
        for ranked in reference_ranking(fitness, members):
            top, bottom = set(ranked[:n]), ranked[m - n:] if n else []
            expected[bottom] = True
            for b in bottom:
                assert donor[b] in top, (ranked, b, donor[b])
        np.testing.assert_array_equal(replaced, expected)
        np.testing.assert_array_equal(donor[~replaced], np.arange(r)[~replaced])  # the rest keep themselves


def test_a_population_of_one_is_never_replaced():
    donor, replaced = select_jit(jax.random.key(0), jnp.array([np.nan, 1.0, np.inf]), jnp.array([[0], [1], [2]]))
    assert donor.tolist() == [0, 1, 2] and not replaced.any()


def test_a_diverged_member_is_the_worst_even_at_minus_inf():
    fitness = jnp.array([-np.inf, 5.0, 1.0, np.nan, 3.0, 4.0], jnp.float32)
    donor, replaced = select_jit(jax.random.key(0), fitness, jnp.array([[0, 1, 2], [3, 4, 5]]), fraction=0.25)
    assert np.flatnonzero(replaced).tolist() == [0, 3]
    assert donor[0] == 2 and donor[3] == 4


def test_ties_are_broken_by_replica_index_whatever_the_order_of_members():
    fitness = jnp.zeros(4)
    for row in ([0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]):
        donor, replaced = select_jit(jax.random.key(0), fitness, jnp.array([row]), fraction=0.25)
        assert np.flatnonzero(replaced).tolist() == [3] and donor[3] == 0


def select_many(fitness, members, n_keys, fraction):
    """``select_donors`` for keys 0..n_keys-1, in one compiled vmap."""
    ks = jax.vmap(jax.random.key)(jnp.arange(n_keys))
    return map(np.asarray, jax.jit(jax.vmap(lambda k: pbt.select_donors(k, fitness, members,
                                                                        fraction=fraction)))(ks))


def test_donors_never_cross_populations_and_every_bottom_member_is_replaced():
    rng = np.random.default_rng(7)
    members, r = random_layout(rng, 4, 6, 2)
    fitness = rng.permutation(r).astype(np.float32)  # no ties: the top and bottom are unambiguous
    donors, replaced = select_many(fitness, members, 500, 0.5)
    population = np.full(r, -1)
    for p, row in enumerate(members):
        population[row] = p
    ranked = reference_ranking(fitness, members)
    top = {x for row in ranked for x in row[:3]}
    bottom = np.array([x for row in ranked for x in row[3:]])
    assert (population[donors] == population[None, :]).all()  # padding (-1) keeps itself: -1 == -1
    assert replaced[:, bottom].all() and replaced.sum(axis=1).tolist() == [len(bottom)] * 500
    assert set(np.unique(donors[:, bottom])) <= top


def test_donors_are_uniform_over_the_top_and_independent_between_populations():
    n_keys = 4000
    members = np.array([[0, 2, 4, 6, 8, 10, 12, 14], [1, 3, 5, 7, 9, 11, 13, 15]], np.int32)
    fitness = np.arange(16, dtype=np.float32)  # top of population 0: 0, 2, 4, 6; of 1: 1, 3, 5, 7
    donors, _ = select_many(fitness, members, n_keys, 0.5)
    # each count of one donor at one bottom slot is Binomial(n_keys, 1/4); 5 sd, see the module docstring
    tolerance = 5 * np.sqrt(n_keys * 0.25 * 0.75)
    for p, row in enumerate(members):
        for b in row[4:]:
            counts = np.array([(donors[:, b] == t).sum() for t in row[:4]])
            assert counts.sum() == n_keys
            assert np.abs(counts - n_keys / 4).max() < tolerance, (b, counts)
    # the two populations draw with keys of their own: the same position at one key agrees 1/4 of the time
    same = ((donors[:, 8] // 2) == (donors[:, 9] // 2)).mean()
    assert abs(same - 0.25) < 5 * np.sqrt(0.25 * 0.75 / n_keys), same


def test_the_same_key_gives_the_same_selection_and_other_rounds_other_draws():
    members = pbt.seed_populations(8, 2)
    fitness = jnp.arange(16.0)
    run_key = jax.random.key(11)
    first = select_jit(pbt.round_keys(run_key, 0)[0], fitness, members, fraction=0.5)
    again = select_jit(pbt.round_keys(run_key, 0)[0], fitness, members, fraction=0.5)
    np.testing.assert_array_equal(first[0], again[0])
    rounds = [np.asarray(select_jit(pbt.round_keys(run_key, t)[0], fitness, members, fraction=0.5)[0])
              for t in range(6)]
    assert len({d.tobytes() for d in rounds}) == 6  # 8 draws from 4 each: a repeat has chance 6e-4


def test_round_keys_fold_the_stream_and_differ_between_select_and_explore():
    key = jax.random.key(3)
    s, e = pbt.round_keys(key, 5)
    base = jax.random.fold_in(jax.random.fold_in(key, keys.PBT_STREAM), 5)
    assert jax.random.key_data(s).tolist() == jax.random.key_data(jax.random.fold_in(base, 0)).tolist()
    assert jax.random.key_data(e).tolist() == jax.random.key_data(jax.random.fold_in(base, 1)).tolist()
    assert keys.PBT_STREAM not in (keys.INIT_STREAM, keys.LAM_STREAM, keys.DATA_STREAM, keys.STEP_STREAM,
                                   keys.EVAL_STREAM, keys.SAMPLE_STREAM)
    batch = pbt.round_keys(jax.vmap(jax.random.key)(jnp.arange(3)), 5)[0]
    assert jax.random.key_data(batch[2]).tolist() == jax.random.key_data(
        pbt.round_keys(jax.random.key(2), 5)[0]).tolist()


def test_raw_and_typed_keys_and_one_key_per_population_agree():
    members = pbt.seed_populations(8, 3)
    fitness = jnp.asarray(np.random.default_rng(0).permutation(24), jnp.float32)
    typed = select_jit(jax.random.key(4), fitness, members, fraction=0.5)[0]
    raw = select_jit(jax.random.PRNGKey(4), fitness, members, fraction=0.5)[0]
    per_population = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(4), jnp.arange(3))
    batched = select_jit(per_population, fitness, members, fraction=0.5)[0]
    np.testing.assert_array_equal(typed, raw)
    np.testing.assert_array_equal(typed, batched)
    with pytest.raises(ValueError, match="one per population"):
        pbt.select_donors(per_population[:2], fitness, members)


def test_with_a_key_per_seed_a_population_does_not_depend_on_the_other_seeds():
    """Seeds (3, 5) on a grid of 4 points, then seed 3 alone: seed 3's population draws the same."""
    rng = np.random.default_rng(2)
    fit = rng.permutation(8).astype(np.float32)  # replica i * 2 + j: point i, seed j
    lam = jnp.asarray(rng.uniform(0.5, 2.0, 8), jnp.float32)
    spec = {"lam": {"choices": jnp.array([0.5, 1.0, 2.0]), "low": 0.0}}

    def round_(seeds, fitness, values):
        members = pbt.seed_populations(4, len(seeds))
        select_keys, explore_keys = pbt.round_keys(jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds)), 2)
        donor, replaced = pbt.select_donors(select_keys, fitness, members, fraction=0.5)
        explore_keys = pbt.member_keys(explore_keys, members, len(fitness))
        return donor, pbt.explore_fields(explore_keys, {"lam": values}, replaced, spec)["lam"]

    both_donor, both_lam = jax.jit(round_, static_argnums=0)((3, 5), fit, lam)
    alone_donor, alone_lam = jax.jit(round_, static_argnums=0)((3,), fit[0::2], lam[0::2])
    np.testing.assert_array_equal(both_donor[0::2] // 2, alone_donor)  # replica 2i of the pair is i alone
    np.testing.assert_array_equal(both_lam[0::2], alone_lam)


def test_seed_populations_follow_the_grid_layout():
    config = SweepConfig(seeds=(3, 5, 9), grid=grid.parse(["lambda_c=0.1,0.2,0.3,0.4"]))
    table = grid.replica_table(config, 14)  # 12 replicas and 2 of padding
    members = pbt.seed_populations(4, 3)
    assert members.shape == (3, 4) and members.dtype == np.int32
    for j, seed in enumerate(config.seeds):
        rows = np.flatnonzero(table["seed"] == seed)
        assert members[j].tolist() == rows[np.argsort(table["point"][rows])].tolist()


@pytest.mark.parametrize("members, message", [
    ([[0, 1], [1, 2]], "appears twice"), ([[0, 4]], r"\[0, 4\)"), ([[-1, 0]], r"\[0, 4\)"),
    ([0, 1], "matrix"), ([[0.0, 1.0]], "integer"),
])
def test_bad_members_are_refused(members, message):
    with pytest.raises(ValueError, match=message):
        pbt.select_donors(jax.random.key(0), jnp.zeros(4), np.asarray(members))


def as_numpy(leaf):
    leaf = jax.random.key_data(leaf) if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key) else leaf
    return np.asarray(leaf)


def test_exploit_copies_whole_rows_of_every_leaf_bit_for_bit():
    r = 6
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(r, 3, 2)), jnp.float32), "b": jnp.asarray(rng.normal(size=(r, 2)))}
    params["w"] = params["w"].at[1, 0, 0].set(jnp.nan).at[2, 1, 1].set(-0.0)
    adam = jax.vmap(optax.adam(1e-3).init)(params)
    adam = jax.tree_util.tree_map(lambda x: x + jnp.arange(r, dtype=x.dtype).reshape((r,) + (1,) * (x.ndim - 1)),
                                  adam)
    states = {"params": params, "opt": adam, "step": jnp.arange(r, dtype=jnp.int32) * 7,
              "diverged": jnp.array([False, True, False, False, True, False]),
              "lam": jnp.asarray(rng.uniform(size=r), jnp.bfloat16), "bytes": jnp.asarray(rng.integers(0, 255, (r, 4)),
                                                                                           jnp.uint8),
              "raw_key": jax.vmap(jax.random.PRNGKey)(jnp.arange(r)),
              "key": jax.vmap(jax.random.key)(jnp.arange(r) + 10)}
    donor = np.array([4, 1, 2, 1, 4, 0], np.int32)
    out = pbt.exploit(states, jnp.asarray(donor))
    assert jax.tree_util.tree_structure(out) == jax.tree_util.tree_structure(states)
    for before, after in zip(jax.tree_util.tree_leaves(states), jax.tree_util.tree_leaves(out)):
        assert before.dtype == after.dtype and before.shape == after.shape
        b, a = as_numpy(before), as_numpy(after)
        expected = b[donor]
        assert a.tobytes() == expected.tobytes()  # bit for bit: NaN and -0.0 included
    with pytest.raises(ValueError, match="replica axis"):
        pbt.exploit({"scalar": jnp.float32(1.0)}, jnp.asarray(donor))


def explored(key, values, replaced, **kw):
    return np.asarray(explore_jit(key, jnp.asarray(values), jnp.asarray(replaced), **kw))


def test_explore_leaves_the_kept_members_bit_for_bit():
    values = np.array([1.0, np.nan, -0.0, 100.0, -5.0, 3.0], np.float32)  # 100 and -5 lie outside the bounds
    replaced = np.array([True, False, False, False, False, True])
    out = explored(jax.random.key(0), values, replaced, choices=np.array([1.0, 2.0]), low=0.0, high=10.0)
    assert out.dtype == np.float32
    assert out[~replaced].tobytes() == values[~replaced].tobytes()


def test_explored_values_are_a_factor_or_a_choice_clipped_into_the_bounds():
    rng = np.random.default_rng(3)
    values = rng.uniform(0.0, 12.0, 400).astype(np.float32)
    choices = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0], np.float32)
    low, high = np.float32(0.3), np.float32(9.0)
    out = explored(jax.random.key(1), values, np.ones(400, bool), choices=choices, low=low, high=high)
    assert ((out >= low) & (out <= high)).all()
    for v, x in zip(values, out):
        allowed = np.clip(np.concatenate([[np.float32(0.8) * v, np.float32(1.2) * v], choices]), low, high)
        assert x in allowed, (v, x)


@pytest.mark.parametrize("resample", [0.25, 0.6])
def test_explore_frequencies_match_perturb_and_resample(resample):
    r = 20000
    out = explored(jax.random.key(5), np.ones(r, np.float32), np.ones(r, bool), choices=np.array([5.0, 7.0]),
                   resample=resample)
    sd = lambda p: np.sqrt(p * (1 - p) / r)  # noqa: E731 (the binomial sd of a frequency)
    for value, p in [(np.float32(0.8), (1 - resample) / 2), (np.float32(1.2), (1 - resample) / 2),
                     (5.0, resample / 2), (7.0, resample / 2)]:
        assert abs((out == value).mean() - p) < 5 * sd(p), (value, (out == value).mean(), p)
    assert np.isin(out, np.array([0.8, 1.2, 5.0, 7.0], np.float32)).all()


def test_explore_at_resample_zero_only_perturbs_and_at_one_only_redraws():
    ones, every = np.ones(2000, np.float32), np.ones(2000, bool)
    perturbed = explored(jax.random.key(0), ones, every, resample=0.0)  # no choices needed
    assert np.isin(perturbed, np.array([0.8, 1.2], np.float32)).all() and len(np.unique(perturbed)) == 2
    redrawn = explored(jax.random.key(0), ones, every, choices=np.array([3.0, 4.0]), resample=1.0)
    assert np.isin(redrawn, [3.0, 4.0]).all() and len(np.unique(redrawn)) == 2


def test_explore_without_choices_redraws_uniformly_or_log_uniformly_within_the_bounds():
    r = 20000
    ones, every = np.ones(r, np.float32), np.ones(r, bool)
    flat = explored(jax.random.key(0), ones, every, low=2.0, high=6.0, resample=1.0)
    assert ((flat >= 2.0) & (flat <= 6.0)).all()
    assert abs(flat.mean() - 4.0) < 5 * (4.0 / np.sqrt(12)) / np.sqrt(r)  # uniform's sd is width / sqrt 12
    logged = explored(jax.random.key(0), ones, every, low=1e-4, high=1e-2, resample=1.0, log_scale=True)
    assert ((logged >= 1e-4 * (1 - 1e-6)) & (logged <= 1e-2 * (1 + 1e-6))).all()
    log10 = np.log10(logged)  # uniform on [-4, -2]
    assert abs(log10.mean() + 3.0) < 5 * (2.0 / np.sqrt(12)) / np.sqrt(r)
    with pytest.raises(ValueError, match="finite"):
        pbt.explore(jax.random.key(0), jnp.ones(2), jnp.ones(2, bool))
    with pytest.raises(ValueError, match="low > 0"):
        pbt.explore(jax.random.key(0), jnp.ones(2), jnp.ones(2, bool), low=0.0, high=1.0, log_scale=True)


@pytest.mark.parametrize("kw, message", [
    ({"resample": 1.5}, "resample"), ({"low": 2.0, "high": 1.0, "resample": 0.0}, "low <= high"),
    ({"choices": np.array([]), "resample": 0.5}, "non-empty"), ({"factors": (0.8,), "resample": 0.0}, "factors"),
])
def test_bad_explore_arguments_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        pbt.explore(jax.random.key(0), jnp.ones(3), jnp.ones(3, bool), **kw)


def test_explore_draws_per_replica_index_not_per_length():
    values, every = np.linspace(1.0, 2.0, 10).astype(np.float32), np.ones(10, bool)
    kw = {"choices": np.array([1.0, 2.0, 4.0]), "low": 0.0}
    long = explored(jax.random.key(9), values, every, **kw)
    short = explored(jax.random.key(9), values[:6], every[:6], **kw)  # fewer padding replicas after them
    np.testing.assert_array_equal(long[:6], short)
    per_replica = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(9), jnp.arange(10))  # the documented keys
    np.testing.assert_array_equal(explored(per_replica, values, every, **kw), long)


def test_each_field_draws_with_a_key_of_its_own():
    r = 2000
    values = {"lam": jnp.ones(r), "lambda_c": jnp.ones(r)}
    spec = {"choices": jnp.array([3.0, 4.0]), "low": 0.0}
    specs = {"lam": spec, "lambda_c": spec}
    key = jax.random.key(2)
    out = jax.jit(lambda k, v, m: pbt.explore_fields(k, v, m, specs))(key, values, jnp.ones(r, bool))
    assert list(out) == ["lam", "lambda_c"]
    for k, name in enumerate(specs):
        np.testing.assert_array_equal(out[name], explore_jit(jax.random.fold_in(key, k), values[name],
                                                             jnp.ones(r, bool), **spec))
    # identical inputs, independent draws: two fields agree where their outcomes agree, with chance Σ p²
    outcome_p = np.array([3 / 8, 3 / 8, 1 / 8, 1 / 8])  # 0.8, 1.2, 3, 4
    p_same = float((outcome_p ** 2).sum())
    same = (np.asarray(out["lam"]) == np.asarray(out["lambda_c"])).mean()
    assert abs(same - p_same) < 5 * np.sqrt(p_same * (1 - p_same) / r), same
    with pytest.raises(ValueError, match="spec"):
        pbt.explore_fields(key, {"lam": jnp.ones(r)}, jnp.ones(r, bool), specs)


def test_donor_record_is_minus_one_where_a_member_kept_its_state():
    assert pbt.donor_record(jnp.array([3, 1, 0, 3]), jnp.array([True, False, True, False])).tolist() == [3, -1, 0, -1]


def make_round(members, specs, fraction=0.25):
    """One PBT round as the engine would compile it: select, exploit the whole state, explore λ and c."""
    traces = []

    def round_(run_key, t, fitness, states):
        traces.append(1)
        select_key, explore_key = pbt.round_keys(run_key, t)
        donor, replaced = pbt.select_donors(select_key, fitness, members, fraction=fraction)
        states = pbt.exploit(states, donor)
        hyper = pbt.explore_fields(explore_key, {"lam": states["lam"], "c": states["c"]}, replaced, specs)
        return dict(states, **hyper), pbt.donor_record(donor, replaced)

    return round_, traces


def test_a_round_compiles_once_and_equals_the_eager_round():
    members = pbt.seed_populations(6, 2)
    specs = {"lam": {"choices": jnp.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0]), "low": 0.0, "high": 20.0},
             "c": {"low": 1e-4, "high": 1.0, "resample": 0.0}}
    round_, traces = make_round(members, specs)
    jitted = jax.jit(round_)
    rng = np.random.default_rng(0)
    states = {"w": jnp.asarray(rng.normal(size=(12, 5)), jnp.float32), "lam": jnp.linspace(0.5, 8.0, 12),
              "c": jnp.full(12, 0.05, jnp.float32), "step": jnp.arange(12, dtype=jnp.int32)}
    run_key = jax.random.key(0)
    for t in range(3):  # three rounds, each with a new fitness and the state the last one left
        fitness = jnp.asarray(rng.normal(size=12), jnp.float32).at[t].set(jnp.nan)
        fast = jitted(run_key, jnp.int32(t), fitness, states)
        if t == 1:  # eager once (op by op is slow to dispatch)
            slow = round_(run_key, jnp.int32(t), fitness, states)
            for a, b in zip(jax.tree_util.tree_leaves(fast), jax.tree_util.tree_leaves(slow)):
                np.testing.assert_array_equal(a, b)
        assert fast[1][t] >= 0  # the NaN member was replaced
        states = fast[0]
    assert len(traces) == 1 + 1  # one trace for jit, one for the eager call
    jaxpr = str(jax.make_jaxpr(round_)(run_key, jnp.int32(0), fitness, states))
    assert "callback" not in jaxpr  # nothing leaves the device


SHARDED = r"""
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
jax.config.update("jax_disable_most_optimizations", True)
from jaxwvae.core import pbt
assert jax.device_count() == 4
members = pbt.seed_populations(4, 3)  # 12 replicas, 4 points x 3 seeds
spec = {"lam": {"choices": jnp.array([0.5, 1.0, 2.0, 4.0]), "low": 0.0}}

def round_(key, fitness, states):
    select_key, explore_key = pbt.round_keys(key, 0)
    donor, replaced = pbt.select_donors(select_key, fitness, members, fraction=0.5)
    states = pbt.exploit(states, donor)
    return dict(states, **pbt.explore_fields(explore_key, {"lam": states["lam"]}, replaced, spec)), donor

rng = np.random.default_rng(0)
fitness = jnp.asarray(rng.permutation(12), jnp.float32)
states = {"w": jnp.asarray(rng.normal(size=(12, 3)), jnp.float32), "lam": jnp.linspace(0.5, 4.0, 12)}
single = jax.jit(round_)(jax.random.key(1), fitness, states)
row = NamedSharding(Mesh(np.array(jax.devices()), ("r",)), PartitionSpec("r"))
sharded = jax.jit(round_)(jax.random.key(1), jax.device_put(fitness, row), jax.device_put(states, row))
for a, b in zip(jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(sharded)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
print("same", int((np.asarray(single[1]) != np.arange(12)).sum()))
"""


def test_a_round_on_four_sharded_devices_equals_one_device():
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4".strip()
    proc = subprocess.run([sys.executable, "-W", "error", "-c", SHARDED], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["same", "6"]  # 3 populations x 2 replaced
