"""Grids of hyperparameters: every grid point times every seed is a replica of one program.

A grid point is a tuple of ``(field, value)`` pairs of :class:`~jaxwvae.config.SweepConfig`;
the fields in :data:`FIELDS` (the config's ``per_replica`` fields) are the scalars a
replica carries in its state under the same names (λ₀, the λ rule and its readings,
the learning rate, the σ cap), so one
compiled step serves every point. ``--grid NAME=V1,V2`` on the command line,
repeated, gives the product of its lists.

Replicas are laid out point-major: replica ``i * len(seeds) + j`` is grid point
``i`` with seed ``j``. A replica's initial parameters, λ₀ draw and batches
depend only on its seed, so replicas of one seed at different points differ
only by the point's values: comparisons between points are paired by seed.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import typing
from collections.abc import Callable

import numpy as np

from jaxwvae.core import names
from jaxwvae.errors import ConfigError


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise ValueError


def _parser(annotation) -> Callable[[str], object]:
    """The parser of one value of a field typed ``annotation`` (``X | None`` takes ``none``; floats take ``inf``)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = len(args) == 1 and len(typing.get_args(annotation)) == 2
    base = args[0] if optional else annotation
    one = {bool: _bool, int: int, float: float, str: str}[base]
    if not optional:
        return one
    # None is the field's "unbounded"/"default" value; for a number "inf" means the same
    nones = ("none", "inf") if base is float else ("none",)
    return lambda text: None if text.strip().lower() in nones else one(text)


def _per_replica_fields() -> dict[str, Callable[[str], object]]:
    from jaxwvae.config.sweep_config import SweepConfig

    hints = typing.get_type_hints(SweepConfig)
    return {f.name: _parser(hints[f.name]) for f in dataclasses.fields(SweepConfig) if f.metadata["per_replica"]}


# field -> parser of one value written on the command line: the config's per-replica fields, typed by
# their annotations
FIELDS = _per_replica_fields()


def parse(specs) -> tuple[tuple[tuple[str, object], ...], ...]:
    """The product of ``["NAME=V1,V2,...", ...]`` as grid points; a ConfigError names what is wrong."""
    axes, seen = [], set()
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ConfigError(f"--grid {spec!r}: write NAME=V1,V2,... (e.g. --grid lambda_c=0.05,0.005)")
        if name not in FIELDS:
            raise ConfigError(f"--grid {spec!r}: {name!r} cannot vary between replicas; "
                              f"grid fields are {', '.join(FIELDS)}")
        if name in seen:
            raise ConfigError(f"--grid {spec!r}: {name} is given twice; list all its values in one --grid")
        seen.add(name)
        texts = [v for v in values.split(",") if v.strip() != ""]
        if not texts:
            raise ConfigError(f"--grid {spec!r}: no values; list at least one, e.g. {name}=V1,V2")
        try:
            parsed = [FIELDS[name](v.strip()) for v in texts]
        except ValueError:
            raise ConfigError(f"--grid {spec!r}: a value is not of {name}'s type") from None
        if len(set(map(repr, parsed))) != len(parsed):
            raise ConfigError(f"--grid {spec!r}: a value appears twice; list each once")
        axes.append([(name, v) for v in parsed])
    return tuple(tuple(point) for point in itertools.product(*axes)) if axes else ()


def point_configs(config) -> list:
    """One config per grid point (the point's values applied, ``grid`` emptied); ``[config]`` without a grid.

    A single point has no population, so its config has no PBT (``pbt_every = 0``, ``pbt_fields = ()``).
    """
    single = {"grid": (), "pbt_every": 0, "pbt_fields": ()}
    if not config.grid:
        return [dataclasses.replace(config, **single)]
    return [dataclasses.replace(config, **single, **dict(point)) for point in config.grid]


def validate(config) -> None:
    """Every point must be a valid config; a ConfigError names the point and the problem."""
    for i, point in enumerate(config.grid):
        if not point:
            raise ConfigError(f"--grid: point {i} is empty; give each point at least one field")
        unknown = [name for name, _ in point if name not in FIELDS]
        if unknown:
            raise ConfigError(f"--grid: point {i} sets {', '.join(unknown)}, which cannot vary between "
                              f"replicas; grid fields are {', '.join(FIELDS)}")
    if len(set(config.grid)) != len(config.grid):
        raise ConfigError("--grid: a point appears twice; list each point once")
    for i, point_config in enumerate(point_configs(config)):
        try:
            point_config.validate()
        except ConfigError as e:
            raise ConfigError(f"--grid point {i} ({describe(config.grid[i])}): {e}") from None


def describe(point) -> str:
    """``"lambda_c=0.005, lam=1"`` for a point."""
    return ", ".join(f"{k}={v}" for k, v in point) if point else "(no grid)"


def resolved_points(config) -> list:
    """Each point's config resolved (λ₀ and the λ rule filled in from the objective)."""
    return [c.resolved() for c in point_configs(config)]


def hyper(point_config) -> dict:
    """The grid fields' values of one resolved point config (JSON-ready)."""
    return {name: getattr(point_config, name) for name in FIELDS}


# the λ rule's per-replica fields besides lambda_rule (jaxwvae.core.lambda_rule.RuleHyper), and the value a
# replica's state holds for None: no bound for lambda_max, 0 for a controller's unused target
RULE_FIELDS = ("lambda_c", "lambda_min", "lambda_max", "lambda_t_scale", "lambda_sign_zero", "pi_target", "pi_kp",
               "pi_ki", "geco_kappa", "geco_alpha", "geco_step")
_NONE = {"lambda_max": math.inf, "pi_target": 0.0, "geco_kappa": 0.0}


def _state_value(name: str, value) -> float:
    return _NONE[name] if value is None else value


def replica_table(config, padded: int) -> dict:
    """Per-replica arrays (``padded`` long) of everything a replica's state takes from its point.

    Keys: ``seed``, ``point``, ``lam_low`` and ``lam_high`` (λ₀, or the range it is drawn from),
    ``learning_rate``, ``sigma_max`` (+inf: no cap) and the fields of
    :class:`jaxwvae.core.lambda_rule.RuleHyper` (``lambda_rule`` as its index in
    :data:`jaxwvae.core.names.LAMBDA_RULES`; ``lambda_max`` +inf when unbounded).
    Padding replicas (to fill every device) repeat point 0 with seeds no real replica uses.
    """
    points = resolved_points(config)
    rows = [(i, s) for i in range(len(points)) for s in config.seeds]
    rows += [(0, max(config.seeds) + 1 + k) for k in range(padded - len(rows))]
    values = []
    for i, seed in rows:
        p = points[i]
        values.append({
            "seed": seed, "point": i, "lam_low": p.lam_init.low, "lam_high": p.lam_init.high,
            "learning_rate": p.learning_rate, "sigma_max": math.inf if p.sigma_max is None else p.sigma_max,
            "lambda_rule": names.LAMBDA_RULES.index(p.lambda_rule),
            **{name: _state_value(name, getattr(p, name)) for name in RULE_FIELDS}})
    ints = ("seed", "point", "lambda_rule")
    return {k: np.asarray([v[k] for v in values], np.int32 if k in ints else np.float32) for k in values[0]}


def replica_count(config) -> int:
    """Grid points times seeds."""
    return max(1, len(config.grid)) * len(config.seeds)


def replica_seeds(config) -> list[int]:
    """The seed of every real replica, point-major (the order of results.json's runs)."""
    return [s for _ in range(max(1, len(config.grid))) for s in config.seeds]
