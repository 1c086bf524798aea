"""jaxwvae: Wasserstein VAEs (Chen & Liu, arXiv 2109.14795) with every seed of a sweep in one program.

The package is in layers, each folder importing only the folders below it
(``tests/test_layers.py`` checks this):

    losses.py    the closed-form losses, plain jax.numpy (``import jaxwvae.losses``)
    core/        the model and the math on it: objectives, the λ rule, the VAE, key streams, names
    data/        datasets (IDX files, tfds) and Table 2's augmented training sets
    devices/     processes, the replica sharding over the devices, XLA's memory figures
    config/      the sweep's config, its presets, grids and the paper's readings of λ
    replica/     one replica: its training state and its step
    runs/        the run folder: files, checkpoints, the lock, signals, the progress line
    forecast/    λ moved on the host: the host rules and the reference forecaster (statsmodels)
    engine/      the sweep: all replicas in one compiled program and the loop that drives it
    evaluation/  FID, the CNN classifier, InceptionV3, sampling from a finished run
    reports/     the paper's tables, the λ study and the plots
    cli.py       the command line's shared flags and the table commands' skeleton
    commands/    the ``jaxwvae`` command (``python -m jaxwvae``): one module per subcommand

Every module has one home and is imported from it (``from jaxwvae.engine import sweep``);
importing the package imports none of them, so ``import jaxwvae.losses`` stays light.
"""

__version__ = "0.1.0"
