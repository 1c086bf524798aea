"""Population-based training's settings: which fields evolve, their bounds, and the checks on a config.

With ``pbt_every > 0`` the replicas of one seed across the grid's points form one
population (replica ``i * len(seeds) + j`` is member ``i`` of population ``j``, see
:mod:`jaxwvae.config.grid`). Members of a population start from their seed's initial
parameters and read their seed's batches, as a grid's points do: they differ only by their
point's values, so selection compares hyperparameters, not initialisations. Every
``pbt_every`` steps the bottom ``pbt_fraction`` of each population (by the validation
fitness ``pbt_fitness``) copies the whole state of a member of its top ``pbt_fraction`` and
perturbs the evolving fields (:data:`BOUNDS`) by 0.8 or 1.2, or redraws them from the grid's
values (Jaderberg et al. 2017, arXiv 1711.09846; the round is :mod:`jaxwvae.core.pbt`).
"""

from __future__ import annotations

import math

from jaxwvae.errors import ConfigError

# The fields PBT can evolve, with the closed range each is kept in after a perturbation. The others
# (the λ rule, t_scale, sign(0)) are categorical: they are copied with the state, never perturbed.
BOUNDS = {
    "lam": (0.0, 1e6),
    "lambda_c": (1e-9, 1.0),
    "lambda_min": (0.0, 1e6),
    "lambda_max": (0.0, math.inf),
    "learning_rate": (1e-6, 1.0),
    "sigma_max": (1e-3, math.inf),
}
FID_MIN_VALIDATION = 500  # images; the 128 CNN features need several times as many for a stable covariance


def evolving_fields(config) -> tuple[str, ...]:
    """``pbt_fields``, or the grid's fields that PBT can evolve, in the grid's order."""
    if config.pbt_fields:
        return tuple(config.pbt_fields)
    in_grid = dict.fromkeys(name for point in config.grid for name, _ in point)
    return tuple(name for name in in_grid if name in BOUNDS)


def choices(config, name: str) -> list[float]:
    """The grid's values of field ``name`` (as the replica's state holds them), for a redraw; [] if none."""
    values = []
    for point in config.grid:
        for field, value in point:
            if field == name:
                values.append(math.inf if value is None else float(value))
    return sorted(set(values))


def validate(config) -> None:
    """Raise ConfigError naming the flag, the problem and the fix."""
    if config.pbt_fields and not config.pbt_every:
        raise ConfigError("--pbt-fields needs --pbt-every STEPS; pass both, or neither")
    if config.pbt_every < 0:
        raise ConfigError(f"--pbt-every {config.pbt_every}: must be >= 0 (0: no population-based training)")
    if not config.pbt_every:
        return
    if len(config.grid) < 2:
        raise ConfigError(f"--pbt-every {config.pbt_every}: a population is the replicas of one seed across the "
                          f"grid's points, and this run has {len(config.grid)} point(s), a population of one; "
                          f"pass a grid of at least two points, e.g. --grid lam=0.5,1,2,4")
    if not (0 < config.pbt_fraction <= 0.5):
        raise ConfigError(f"--pbt-fraction {config.pbt_fraction}: must be in (0, 0.5], so the bottom and the "
                          f"top of a population never overlap; pass e.g. 0.25")
    if not (0 <= config.pbt_resample <= 1):
        raise ConfigError(f"--pbt-resample {config.pbt_resample}: a probability must be in [0, 1]; pass e.g. 0.25")
    unknown = [name for name in config.pbt_fields if name not in BOUNDS]
    if unknown:
        raise ConfigError(f"--pbt-fields: {', '.join(unknown)} cannot evolve; PBT evolves {', '.join(BOUNDS)}")
    if not evolving_fields(config):
        raise ConfigError(f"--pbt-every {config.pbt_every}: the grid has no field PBT can evolve "
                          f"({', '.join(BOUNDS)}); name them with --pbt-fields or vary one in --grid")
    if "lam" in evolving_fields(config):
        bad = [value for point in config.grid for name, value in point if name == "lam" and ":" in str(value)]
        if bad:
            raise ConfigError(f"--grid lam={bad[0]}: PBT evolves λ from the grid's numbers; a range "
                              f"(uniform:LO:HI) is not one; list numbers, e.g. --grid lam=0.5,1,2,4")
    if config.forecaster != "device":
        raise ConfigError(f"--forecaster {config.forecaster}: PBT copies each member's λ rule state on the device, "
                          f"and this forecaster keeps it on the host; pass --forecaster device")
    if config.validation_size < 1:
        raise ConfigError(f"--pbt-every {config.pbt_every}: PBT ranks members on held-out images, never the "
                          f"test set; pass --validation-size N (e.g. 1000)")
    if config.pbt_fitness == "fid" and config.validation_size < FID_MIN_VALIDATION:
        raise ConfigError(f"--validation-size {config.validation_size}: too small for --pbt-fitness fid (the "
                          f"covariance of 128 CNN features); pass at least {FID_MIN_VALIDATION}, or --pbt-fitness elbo")
