"""The sweep's configuration: :class:`SweepConfig`, its presets, grids of hyperparameters, λ readings.

The names below are :mod:`jaxwvae.config.sweep_config`'s; grids live in :mod:`jaxwvae.config.grid`,
the paper's readings of λ in :mod:`jaxwvae.config.readings`, PBT's settings in :mod:`jaxwvae.config.pbt`. The names a field may take are their
registries' (:mod:`jaxwvae.core.names`, :data:`jaxwvae.data.DATASETS`). Imports
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

__all__ = ["PRESETS", "LamInit", "SweepConfig",
           "paper_adaptive_slow", "paper_fashion", "paper_mnist", "paper_section3", "paper_section4",
           "reading", "smoke"]
