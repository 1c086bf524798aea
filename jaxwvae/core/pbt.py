r"""Population-based training (Jaderberg et al. 2017) as pure functions over the stacked replica axis.

Every ``k`` steps the members of each population are ranked by a fitness (lower is better); each
member of a population's bottom ``n`` copies the whole state of a member drawn uniformly from the top
``n`` of the same population (*exploit*: truncation selection), then its evolving hyperparameters are
multiplied by 0.8 or 1.2, or with probability ``resample`` redrawn from the grid's values (*explore*).

Here a population is a set of replicas of the one compiled program, given as a static integer matrix
``members`` of shape ``[P, M]``: population ``p`` holds the replicas ``members[p]``. With the grid's
point-major layout (replica ``i * S + j`` is grid point ``i`` with seed ``j``) the replicas of seed
``j`` form population ``j``: :func:`seed_populations`. A round is one select, one gather and a few
element-wise draws over the replica axis: no host callback, so it runs inside ``jit`` with that axis
sharded, and parameters never leave the devices.

Randomness. A round's keys come from the key stream :data:`~jaxwvae.core.keys.PBT_STREAM`:
:func:`round_keys` gives ``(select_key, explore_key)``, folded 0 and 1 into
``keys.stream(key, PBT_STREAM, r)`` for round ``r``. Every draw is tied to an index, never to an
array's length: population ``p`` draws with ``fold_in(select_key, p)``, replica ``r`` with
``fold_in(explore_key, r)``, field ``k`` of :func:`explore_fields` with ``fold_in(explore_key, k)``
(one key per field: no two fields share their draws). So padding replicas change nothing. Two ways to
key a run::

    # one key for the run: population p's draws depend on (run_key, r, p)
    select_key, explore_key = round_keys(run_key, r)
    donor, replaced = select_donors(select_key, fitness, members)
    values = explore_fields(explore_key, values, replaced, specs)

    # one key per population, e.g. its seed's PRNGKey: population p's draws depend on its seed alone,
    # so a seed's PBT run does not depend on which other seeds share the sweep
    select_keys, explore_keys = round_keys(jax.vmap(jax.random.PRNGKey)(seeds), r)   # [P] each
    donor, replaced = select_donors(select_keys, fitness, members)
    values = explore_fields(member_keys(explore_keys, members, R), values, replaced, specs)

Keys may be typed (``jax.random.key``) or raw (``PRNGKey``, ``uint32[..., 2]``); a function taking
``key`` takes one key, or one per population (select) or per replica (explore), on a leading axis.

References:
  Jaderberg et al., *Population Based Training of Neural Networks*, 2017, arXiv:1711.09846
  (section 3, exploit and explore; section 4, "truncation selection", "perturb" and "resample").
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxwvae.core.keys import PBT_STREAM, stream

FRACTION = 0.25  # the bottom 25 % copy the top 25 % (the paper's reinforcement-learning runs use 20 %)
FACTORS = (0.8, 1.2)  # the paper's perturbation factors
RESAMPLE = 0.25  # the probability of redrawing a value instead of perturbing it


def _batch_shape(key) -> tuple:
    """The batch shape of a typed key array, or of a raw ``uint32[..., 2]`` one."""
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return tuple(key.shape)
    if key.ndim < 1 or key.shape[-1] != 2:
        raise ValueError(f"key: expected a typed key array or raw uint32[..., 2] keys, got shape {key.shape}")
    return tuple(key.shape[:-1])


def _fold(key, data):
    """``fold_in(key, data)`` for one key, or for each key of a batch."""
    if _batch_shape(key) == ():
        return jax.random.fold_in(key, data)
    return jax.vmap(lambda k: _fold(k, data))(key)


def _by_index(key, n: int, what: str):
    """``n`` keys: ``fold_in(key, i)`` for ``i < n`` from one key, or ``key`` itself when it holds ``n``."""
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    shape = _batch_shape(key)
    if shape == ():
        return jax.vmap(jax.random.fold_in, (None, 0))(key, jnp.arange(n, dtype=jnp.uint32))
    if shape != (n,):
        raise ValueError(f"key: give one key or one per {what} ({n}), got a batch of shape {shape}")
    return key


def round_keys(key, round_):
    """``(select_key, explore_key)`` of PBT round ``round_``, from the stream ``PBT_STREAM`` of ``key``.

    ``select_key = fold_in(keys.stream(key, PBT_STREAM, round_), 0)`` and ``explore_key`` the same with
    1. ``round_`` is any integer distinct per round (its index, or the step at which it runs); ``key``
    is one key, or a batch of keys (e.g. one per population) giving batches of both.

    Args:
      key: a key, or keys ``[P]`` (typed) / ``uint32[P, 2]`` (raw).
      round_: an integer scalar (may be traced).

    Returns:
      ``(select_key, explore_key)``, each of ``key``'s shape.

    >>> import jax
    >>> s, e = round_keys(jax.random.key(0), 3)
    >>> bool((jax.random.key_data(s) != jax.random.key_data(e)).any())
    True
    """
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if _batch_shape(key) != ():
        return jax.vmap(lambda k: round_keys(k, round_))(key)
    base = stream(key, PBT_STREAM, round_)
    return jax.random.fold_in(base, 0), jax.random.fold_in(base, 1)


def seed_populations(n_points: int, n_seeds: int) -> np.ndarray:
    """The populations of the grid's layout: population ``j`` is seed ``j`` at every point.

    Replica ``i * n_seeds + j`` is grid point ``i`` with seed ``j`` (:mod:`jaxwvae.config.grid`), so
    ``members[j] = [j, S + j, 2S + j, ...]``. Padding replicas (indices from ``n_points * n_seeds``
    on) belong to no population.

    Args:
      n_points: the number of grid points ``G`` (the population size ``M``).
      n_seeds: the number of seeds ``S`` (the number of populations ``P``).

    Returns:
      ``int32 [S, G]``.

    >>> seed_populations(3, 2).tolist()
    [[0, 2, 4], [1, 3, 5]]
    """
    return np.arange(n_points * n_seeds, dtype=np.int32).reshape(n_points, n_seeds).T.copy()


def truncation_size(population_size: int, fraction: float = FRACTION) -> int:
    """``n``, the size of the bottom (and of the top) of a population of ``M`` members.

    ``n = min(max(floor(fraction · M), 1), M // 2)`` for ``M >= 2`` and 0 for ``M = 1``: at least one
    member is replaced, and the bottom and the top never overlap.

    Args:
      population_size: ``M``.
      fraction: ``q`` in ``(0, 0.5]``.

    Returns:
      ``n``, a Python int.

    >>> [truncation_size(m, 0.25) for m in (1, 2, 6, 8)], truncation_size(6, 0.5)
    ([0, 1, 1, 2], 3)
    """
    if not (isinstance(fraction, numbers.Real) and 0.0 < fraction <= 0.5):
        raise ValueError(f"fraction: expected a number in (0, 0.5], got {fraction!r}")
    if population_size < 2:
        return 0
    # round first: 0.29 * 100 is 28.999999999999996 in floating point, and means 29
    return min(max(math.floor(round(fraction * population_size, 9)), 1), population_size // 2)


def _members(members, num_replicas: int):
    """``members`` as an int32 array ``[P, M]``, checked when it is concrete."""
    try:
        concrete = np.asarray(members)
    except jax.errors.TracerArrayConversionError:
        concrete = None
    if concrete is not None:
        if concrete.ndim != 2 or (concrete.size and not np.issubdtype(concrete.dtype, np.integer)):
            raise ValueError(f"members: expected an integer matrix [P, M], got {concrete.dtype} "
                             f"of shape {concrete.shape}")
        flat = concrete.ravel()
        if flat.size and (flat.min() < 0 or flat.max() >= num_replicas):
            raise ValueError(f"members: replica indices must lie in [0, {num_replicas}), got "
                             f"{flat.min()}..{flat.max()}")
        if len(np.unique(flat)) != flat.size:
            raise ValueError("members: a replica appears twice; each replica belongs to at most one population")
        return jnp.asarray(concrete, jnp.int32)
    if members.ndim != 2:
        raise ValueError(f"members: expected a matrix [P, M], got shape {members.shape}")
    return members.astype(jnp.int32)


def member_keys(population_keys, members, num_replicas: int):
    """One key per replica from one key per population: ``members[p, m]`` gets ``fold_in(keys[p], m)``.

    So a member's draws depend on its population's key and its position ``m`` in ``members[p]``
    alone. Replicas in no population get the key of ``members[0, 0]``; :func:`select_donors` never
    replaces them, so :func:`explore` never uses it.

    Args:
      population_keys: keys ``[P]`` (typed) or ``uint32[P, 2]`` (raw).
      members: int ``[P, M]``, the populations.
      num_replicas: ``R``.

    Returns:
      keys ``[R]`` (typed) or ``uint32[R, 2]`` (raw).
    """
    members = _members(members, num_replicas)
    p, m = members.shape
    population_keys = _by_index(population_keys, p, "population")
    table = jax.vmap(lambda k: jax.vmap(jax.random.fold_in, (None, 0))(k, jnp.arange(m, dtype=jnp.uint32)))(
        population_keys)
    flat = table.reshape((p * m,) + table.shape[2:])
    position = jnp.zeros(num_replicas, jnp.int32).at[members.ravel()].set(jnp.arange(p * m, dtype=jnp.int32))
    return flat[position]


def select_donors(key, fitness, members, *, fraction: float = FRACTION):
    """Truncation selection: each member of a population's bottom ``n`` gets a donor from its top ``n``.

    In each population ``p`` the members ``members[p]`` are ranked by ``fitness``, lower first, with
    every non-finite value (NaN, ±inf: a diverged member) after every finite one, ties broken by the
    replica index (so the ranking is deterministic). With ``n = truncation_size(M, fraction)``, each of
    the last ``n`` draws its donor uniformly (with replacement, ``jax.random.randint``) from the first
    ``n`` of the same population; every other replica, and every replica in no population, keeps
    itself. Population ``p`` draws with ``fold_in(key, p)``, or with ``key[p]`` when ``key`` holds
    one key per population.

    Only gathers, a sort per population and scatters: it runs under ``jit`` and with the replica axis
    sharded. ``members`` is static (its shape fixes ``n``); a concrete one is checked.

    Args:
      key: one key, or one per population (``[P]`` typed, ``uint32[P, 2]`` raw).
      fitness: ``[R]`` floats, lower is better.
      members: int ``[P, M]``, distinct replica indices in ``[0, R)``.
      fraction: ``q`` in ``(0, 0.5]``, the truncation fraction.

    Returns:
      ``(donor, replaced)``: ``donor`` int32 ``[R]``, the replica whose state each replica takes
      (itself when not replaced), and ``replaced`` bool ``[R]``.

    >>> import jax, jax.numpy as jnp
    >>> members = seed_populations(4, 2)  # [[0, 2, 4, 6], [1, 3, 5, 7]]
    >>> fitness = jnp.array([3.0, 0.0, 1.0, jnp.nan, 2.0, 5.0, 0.0, 4.0])
    >>> donor, replaced = select_donors(jax.random.key(0), fitness, members)
    >>> donor.tolist()  # 0 (worst of [0, 2, 4, 6]) takes 6 (best); 3 (NaN) takes 1
    [6, 1, 2, 1, 4, 5, 6, 7]
    >>> replaced.tolist()
    [True, False, False, True, False, False, False, False]

    References:
      Jaderberg et al. 2017, arXiv:1711.09846, sections 3 and 4 ("truncation selection").
    """
    fitness = jnp.asarray(fitness)
    if fitness.ndim != 1:
        raise ValueError(f"fitness: expected [R], got shape {fitness.shape}")
    num_replicas = fitness.shape[0]
    members = _members(members, num_replicas)
    p, m = members.shape
    n = truncation_size(m, fraction)
    identity = jnp.arange(num_replicas, dtype=jnp.int32)
    if n == 0 or p == 0:
        return identity, jnp.zeros(num_replicas, bool)
    keys = _by_index(key, p, "population")
    f = fitness[members]
    bad = ~jnp.isfinite(f)
    # lexsort's last key is the primary one: non-finite last, then fitness, then the replica index
    order = jnp.lexsort((members, jnp.where(bad, jnp.zeros_like(f), f), bad), axis=-1)
    ranked = jnp.take_along_axis(members, order, axis=-1)
    top, bottom = ranked[:, :n], ranked[:, m - n:]
    picks = jax.vmap(lambda k: jax.random.randint(k, (n,), 0, n))(keys)
    donors = jnp.take_along_axis(top, picks, axis=-1)
    donor = identity.at[bottom.ravel()].set(donors.ravel())
    replaced = jnp.zeros(num_replicas, bool).at[bottom.ravel()].set(True)
    return donor, replaced


def exploit(states, donor):
    """Every replica takes its donor's whole state: ``tree_map(lambda x: x[donor], states)``.

    Every leaf must carry the replica axis first (parameters, Adam moments, λ, the λ rule's state,
    the hyperparameters, the key, the divergence flag: everything). A gather copies bits, so each
    replica equals its donor bit for bit, and a replica whose donor is itself is unchanged.

    Args:
      states: a pytree whose leaves are ``[R, ...]`` arrays (any dtypes, typed keys included).
      donor: int ``[R]``, from :func:`select_donors`.

    Returns:
      the pytree of ``states`` with row ``r`` of each leaf replaced by row ``donor[r]``.

    >>> import jax.numpy as jnp
    >>> exploit({"lam": jnp.array([1.0, 2.0, 3.0])}, jnp.array([0, 0, 2]))["lam"].tolist()
    [1.0, 1.0, 3.0]
    """
    donor = jnp.asarray(donor)
    if donor.ndim != 1:
        raise ValueError(f"donor: expected [R], got shape {donor.shape}")

    def take(path, x):
        x = x if isinstance(x, jax.Array) else jnp.asarray(x)
        if x.ndim < 1 or x.shape[0] != donor.shape[0]:
            raise ValueError(f"exploit: leaf {jax.tree_util.keystr(path)} has shape {x.shape}; every leaf needs "
                             f"the replica axis ({donor.shape[0]}) first")
        return x[donor]

    return jax.tree_util.tree_map_with_path(take, states)


def _concrete(x):
    """``x`` as a NumPy array when it is concrete, else None."""
    try:
        return np.asarray(x)
    except jax.errors.TracerArrayConversionError:
        return None


def explore(key, values, replaced, *, choices=None, low=-math.inf, high=math.inf, factors=FACTORS,
            resample=RESAMPLE, log_scale=False):
    r"""Perturb or resample one evolving hyperparameter of the replaced members.

    For each replica ``r`` with ``replaced[r]``, independently::

        v'_r = clip(c_r, low, high)              with probability resample, c_r ~ Uniform(choices)
        v'_r = clip(factors[0] · v_r, low, high) with probability (1 − resample) / 2
        v'_r = clip(factors[1] · v_r, low, high) with probability (1 − resample) / 2

    and ``v'_r = v_r`` bit for bit where ``replaced[r]`` is False (no clipping either). Without
    ``choices`` a redraw is uniform on ``[low, high]`` (log-uniform with ``log_scale``, for a scale
    parameter such as a learning rate), which needs finite bounds (and ``low > 0`` with
    ``log_scale``); ``log_scale`` changes nothing else. The multiplication is in ``values``' dtype,
    so a perturbed value is ``float32(factor) · v`` for float32 values. Replica ``r`` draws three
    float32 uniforms ``u`` with ``fold_in(key, r)`` (or ``key[r]`` when ``key`` holds one key per
    replica): it redraws if ``u₀ < resample``, takes ``factors[1]`` if ``u₁ < 1/2``, and redraws
    ``choices[⌊u₂ · K⌋]`` of ``K`` choices (or ``low + u₂ · (high − low)``, in logs with ``log_scale``).

    Args:
      key: one key, or one per replica (``[R]`` typed, ``uint32[R, 2]`` raw).
      values: floats ``[R]``, the field's value per replica (after :func:`exploit`: the donors').
      replaced: bool ``[R]``, from :func:`select_donors`.
      choices: 1-D array of the values to redraw from (the grid's values of the field), or None.
      low, high: bounds (scalars or ``[R]``) that make sense for the field, e.g. ``low=0`` for λ.
      factors: ``(down, up)``, the perturbation factors.
      resample: the probability of a redraw, in ``[0, 1]``.
      log_scale: draw a redraw without ``choices`` log-uniformly.

    Returns:
      ``[R]`` of ``values``' dtype.

    >>> import jax, jax.numpy as jnp
    >>> v = explore(jax.random.key(2), jnp.array([1.0, 2.0, 4.0]), jnp.array([True, False, True]),
    ...             choices=jnp.array([0.5, 1.0, 2.0]), low=0.0, high=4.5)
    >>> [round(x, 3) for x in v.tolist()]  # 1 · 0.8; 2 kept; 4 · 1.2 = 4.8 clipped to 4.5
    [0.8, 2.0, 4.5]

    References:
      Jaderberg et al. 2017, arXiv:1711.09846, sections 3 and 4 ("perturb" and "resample").
    """
    values = jnp.asarray(values)
    replaced = jnp.asarray(replaced)
    if values.ndim != 1 or not jnp.issubdtype(values.dtype, jnp.inexact):
        raise ValueError(f"values: expected floats [R], got {values.dtype} of shape {values.shape}")
    if replaced.shape != values.shape or replaced.dtype != jnp.bool_:
        raise ValueError(f"replaced: expected bool {values.shape} like values, got {replaced.dtype} "
                         f"of shape {replaced.shape}")
    if len(factors) != 2:
        raise ValueError(f"factors: expected (down, up), got {factors!r}")
    r = _concrete(resample)
    if r is not None and not (r.ndim == 0 and 0.0 <= r <= 1.0):
        raise ValueError(f"resample: expected a probability in [0, 1], got {resample!r}")
    lo, hi = _concrete(low), _concrete(high)
    if lo is not None and hi is not None and np.any(lo > hi):
        raise ValueError(f"low, high: expected low <= high, got {low!r} > {high!r}")
    dtype = values.dtype
    if choices is not None:
        choices = jnp.asarray(choices, dtype)
        if choices.ndim != 1 or choices.shape[0] == 0:
            raise ValueError(f"choices: expected a non-empty 1-D array, got shape {choices.shape}")
    elif not (r is not None and r == 0):  # bounds given as traced arrays are the caller's to check
        if any(b is not None and not np.all(np.isfinite(b)) for b in (lo, hi)):
            raise ValueError(f"explore: a redraw without choices is uniform on [low, high] and needs finite "
                             f"bounds (got [{low!r}, {high!r}]); give choices, finite bounds or resample=0")
        if log_scale and lo is not None and np.any(lo <= 0):
            raise ValueError(f"explore: log_scale needs low > 0, got {low!r}")
    keys = _by_index(key, values.shape[0], "replica")
    # three float32 uniforms per replica: the coin (redraw?), the factor (up?) and the redrawn value
    u = jax.vmap(lambda k: jax.random.uniform(k, (3,), jnp.float32))(keys)
    redraw, up = u[:, 0] < resample, u[:, 1] < 0.5
    if choices is not None:
        fresh = choices[jnp.minimum((u[:, 2] * choices.shape[0]).astype(jnp.int32), choices.shape[0] - 1)]
    elif log_scale:
        fresh = jnp.exp(jnp.log(low) + u[:, 2] * (jnp.log(high) - jnp.log(low))).astype(dtype)
    else:
        fresh = (low + u[:, 2] * (high - low)).astype(dtype)
    factor = jnp.where(up, jnp.asarray(factors[1], dtype), jnp.asarray(factors[0], dtype))
    moved = jnp.clip(jnp.where(redraw, fresh, values * factor), low, high).astype(dtype)
    return jnp.where(replaced, moved, values)


def explore_fields(key, values: Mapping, replaced, specs: Mapping) -> dict:
    """:func:`explore` for several named fields, field ``k`` of ``specs`` with ``fold_in(key, k)``.

    ``k`` is the field's position in ``specs`` (fixed for a run: build ``specs`` in one fixed order,
    e.g. the grid's ``FIELDS``), so each field has draws of its own and none shares another's key.

    Args:
      key: one key, or one per replica (as in :func:`explore`).
      values: ``{name: [R] floats}``, with the names of ``specs``.
      replaced: bool ``[R]``.
      specs: ``{name: {keyword: value}}``, each field's keyword arguments of :func:`explore`
        (``choices``, ``low``, ``high``, ``factors``, ``resample``, ``log_scale``).

    Returns:
      ``{name: [R]}``, in the order of ``specs``.

    >>> import jax, jax.numpy as jnp
    >>> out = explore_fields(jax.random.key(0), {"lam": jnp.ones(2), "c": jnp.ones(2)}, jnp.array([True, False]),
    ...                      {"lam": {"low": 0.0, "resample": 0.0}, "c": {"low": 0.0, "resample": 0.0}})
    >>> list(out), out["lam"][1].item(), out["c"][1].item()
    (['lam', 'c'], 1.0, 1.0)
    """
    if set(values) != set(specs):
        raise ValueError(f"explore_fields: values has fields {sorted(values)} but specs {sorted(specs)}; "
                         "give each field its values and its spec")
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    return {name: explore(_fold(key, k), values[name], replaced, **spec) for k, (name, spec) in
            enumerate(specs.items())}


def donor_record(donor, replaced):
    """The donor to record per replica: ``donor`` where replaced, ``-1`` where a member kept its state.

    >>> import jax.numpy as jnp
    >>> donor_record(jnp.array([2, 1, 2]), jnp.array([True, False, False])).tolist()
    [2, -1, -1]
    """
    return jnp.where(replaced, donor, -1).astype(jnp.int32)
