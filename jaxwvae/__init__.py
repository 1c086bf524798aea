"""jaxwvae: Wasserstein VAEs (Chen & Liu, arXiv 2109.14795) with every seed of a sweep in one program.

Submodules are imported on use, so ``from jaxwvae import losses`` stays light.
"""

__version__ = "0.1.0"
