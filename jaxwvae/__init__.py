"""jaxwvae: Wasserstein VAEs (Chen & Liu, arXiv 2109.14795) with every seed of a sweep in one program.

The package is in layers, each folder importing only the folders below it
(``tests/test_layers.py`` checks this):

    core/        the math and the model: losses, objectives, the λ rule, the VAE, statistics
    data/        datasets (IDX files, tfds) and Table 2's augmented training sets
    config/      the sweep's config, its presets, grids and the paper's readings of λ
    replica/     one replica: its training state and its step
    runs/        the run folder: files, checkpoints, the lock, signals, the progress line
    engine/      the sweep: all replicas in one program, sharded, chunked, resumable
    evaluation/  FID, the CNN classifier, InceptionV3, sampling from a finished run
    reports/     the paper's tables, the λ study and the plots
    cli.py       the command line shared by experiments/*.py

Modules are imported on use, so ``from jaxwvae import losses`` stays light; the flat names
of earlier versions (``jaxwvae.losses``, ``jaxwvae.sweep``, …) are kept as aliases below.
"""

import importlib

__version__ = "0.1.0"

# flat name -> its home; ``from jaxwvae import losses`` keeps working.
_HOMES = {
    "losses": "core", "objectives": "core", "lambda_rule": "core", "models": "core", "stats": "core",
    "exclusion": "core", "keys": "core",
    "augment": "data", "datasets": "data",
    "grid": "config", "readings": "config",
    "state": "replica", "train": "replica",
    "rundir": "runs", "checkpoint": "runs", "runlock": "runs", "interrupt": "runs", "progress": "runs",
    "sweep": "engine", "memory": "engine", "distributed": "engine", "statsmodels_rule": "engine",
    "fid": "evaluation", "inception": "evaluation", "classifier": "evaluation", "generate": "evaluation",
    "tables": "reports", "study": "reports", "plots": "reports", "paper": "reports",
}


def __getattr__(name):
    if name in _HOMES:
        return importlib.import_module(f"jaxwvae.{_HOMES[name]}.{name}")
    raise AttributeError(f"module 'jaxwvae' has no attribute {name!r}")
