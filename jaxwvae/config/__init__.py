"""The sweep's configuration: :class:`SweepConfig`, its presets, grids of hyperparameters, λ readings.

The names below are :mod:`jaxwvae.config.sweep_config`'s; grids live in :mod:`jaxwvae.config.grid`,
the paper's readings of λ in :mod:`jaxwvae.config.readings`. The names a field may take are their
registries' (:mod:`jaxwvae.core.names`, :data:`jaxwvae.data.DATASETS`), re-exported here. Imports
core and data only.
"""

from jaxwvae.config.sweep_config import (
    PRESETS,
    LamInit,
    SweepConfig,
    paper_adaptive_slow,
    paper_fashion,
    paper_mnist,
    paper_section3,
    paper_section4,
    reading,
    smoke,
)
from jaxwvae.core.names import FORECASTERS, LAMBDA_RULES, REPLICA_LOOPS

__all__ = ["FORECASTERS", "LAMBDA_RULES", "PRESETS", "REPLICA_LOOPS", "LamInit", "SweepConfig",
           "paper_adaptive_slow", "paper_fashion", "paper_mnist", "paper_section3", "paper_section4",
           "reading", "smoke"]
