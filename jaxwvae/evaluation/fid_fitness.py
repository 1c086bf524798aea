"""PBT's ``fid`` fitness: the FID of each replica's prior samples against the validation images.

The engine never imports evaluation; the command line builds this function and hands it to
``jaxwvae.engine.sweep.run``. The features are Table 1's (the small CNN of
:func:`jaxwvae.evaluation.replica_fid.feature_function`). A replica's samples are drawn from
its seed's sample stream, the same every round, so the members of a population (one seed)
are compared on the same latent codes: a paired comparison, with less noise than fresh draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import numpy as np

from jaxwvae.core.models import VAE
from jaxwvae.evaluation import fid, generate

GROUP = 10  # replicas decoded at once, so a round's images never all sit in memory


def validation_fid(model: VAE, validation_u8, feature_fn: Callable, *, samples: int | None = None):
    """``fitness(params, seeds) -> float64 [replicas]``: each replica's FID (NaN where it has none).

    Args:
      model: the run's VAE (its widths; parameters come with each call).
      validation_u8: the validation images, uint8 ``[n, 784]`` or ``[n, 28, 28]``.
      feature_fn: ``images_u8 [n, 28, 28] -> features [n, d]``.
      samples: prior samples per replica (default: as many as validation images).
    """
    validation_u8 = np.asarray(validation_u8).reshape(len(validation_u8), 28, 28)
    reference = fid.feature_stats(feature_fn(validation_u8))
    n = samples or len(validation_u8)

    def fitness(params, seeds) -> np.ndarray:
        seeds = np.asarray(seeds)
        out = []
        for start in range(0, len(seeds), GROUP):
            group = jax.tree_util.tree_map(lambda x: x[start:start + GROUP], params)
            images = generate.to_uint8(generate.sample_prior(model, group, seeds[start:start + GROUP], n))
            for one in images:
                try:
                    out.append(fid.frechet_distance(*fid.feature_stats(feature_fn(one)), *reference))
                except ValueError:  # non-finite features: a diverged replica has no FID
                    out.append(math.nan)
        return np.asarray(out, np.float64)

    return fitness


def for_run(config, validation_u8, feature_recipe: dict | None = None):
    """:func:`validation_fid` of a run's config: its VAE, its dataset's CNN features (Table 1's)."""
    from jaxwvae.evaluation import replica_fid

    _, feature_fn = replica_fid.feature_function(config.dataset, config.data_dir, feature_recipe=feature_recipe)
    model = VAE(config.hidden, config.latent_dim, int(np.prod(np.shape(validation_u8)[1:])))
    return validation_fid(model, validation_u8, feature_fn)
