"""Fréchet distance between Gaussians fitted to two feature sets (FID), in float64 NumPy on the host.

The features come from any network; this library's default is the penultimate
layer of the small CNN of ``jaxwvae.evaluation.classifier.feature_params`` (trained once per
dataset and cached), so its numbers are comparable with each other, not with
Inception-based FIDs of other papers. Nothing here needs JAX.
"""

from __future__ import annotations

import numpy as np

__all__ = ["frechet_distance", "feature_stats", "fid"]


def _symmetric(cov, name: str) -> np.ndarray:
    cov = np.asarray(cov, np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {cov.shape}")
    if not np.all(np.isfinite(cov)):
        raise ValueError(f"{name} holds non-finite values")
    return 0.5 * (cov + cov.T)


def _clip_rounding(w) -> np.ndarray:
    """Eigenvalues of a PSD matrix with those at rounding level (``<= d * eps * max |w|``, or < 0) set to 0.

    ``eigh`` finds each eigenvalue to about ``eps * max |w|``, so a zero one comes
    back as ``+-1e-16 * max |w|``; its square root (``1e-8``) would add up over
    the null space of a singular covariance. Zeroing them keeps the result
    exact when there are fewer samples than dimensions.
    """
    tol = max(len(w), 1) * np.finfo(np.float64).eps * (np.max(np.abs(w)) if len(w) else 0.0)
    return np.where(w > tol, w, 0.0)


def _psd_sqrt(cov) -> np.ndarray:
    """The symmetric square root of a symmetric PSD matrix (eigenvalues at rounding level set to 0)."""
    w, v = np.linalg.eigh(cov)
    return (v * np.sqrt(_clip_rounding(w))) @ v.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    r"""Squared 2-Wasserstein (Fréchet) distance between ``N(mu1, cov1)`` and ``N(mu2, cov2)``.

    .. math:: \lVert\mu_1 - \mu_2\rVert^2 + \mathrm{tr}\big(C_1 + C_2
              - 2\,(C_1^{1/2} C_2 C_1^{1/2})^{1/2}\big)

    Computed with two symmetric eigendecompositions (of ``C_1``, then of the
    symmetric ``C_1^{1/2} C_2 C_1^{1/2}``), eigenvalues below 0 or at rounding
    level set to 0, instead of ``sqrtm`` of the non-symmetric ``C_1 C_2``: the
    result is real and finite for singular covariances (fewer samples than
    dimensions), and it is clipped at 0 so rounding never makes it negative.
    The covariances are symmetrised first.

    Args:
      mu1, mu2: means, shape ``[d]``.
      cov1, cov2: covariances, shape ``[d, d]`` (positive semi-definite).

    Returns:
      The distance, a Python float >= 0.
    """
    mu1 = np.asarray(mu1, np.float64)
    mu2 = np.asarray(mu2, np.float64)
    cov1 = _symmetric(cov1, "cov1")
    cov2 = _symmetric(cov2, "cov2")
    d = mu1.shape[0] if mu1.ndim == 1 else None
    if d is None or mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(f"shapes must be mu [d], cov [d, d] with one d: mu1.shape={mu1.shape}, "
                         f"cov1.shape={cov1.shape}, mu2.shape={mu2.shape}, cov2.shape={cov2.shape}")
    if not (np.all(np.isfinite(mu1)) and np.all(np.isfinite(mu2))):
        raise ValueError("mu1 and mu2 must be finite")
    root1 = _psd_sqrt(cov1)
    cross = root1 @ cov2 @ root1
    cross_eig = np.linalg.eigvalsh(0.5 * (cross + cross.T))
    trace_sqrt = np.sum(np.sqrt(_clip_rounding(cross_eig)))
    value = np.sum(np.square(mu1 - mu2)) + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
    return max(float(value), 0.0)


def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[d]`` and covariance ``[d, d]`` (``ddof=1``, as pytorch-fid) of ``features`` ``[n, d]``, in float64.

    Needs ``n >= 2``; with ``n <= d`` the covariance is singular, which
    :func:`frechet_distance` handles.
    """
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be [n, d] with n >= 2, got shape {features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError("features hold non-finite values")
    mu = features.mean(axis=0)
    centered = features - mu
    cov = centered.T @ centered / (features.shape[0] - 1)
    return mu, cov


def fid(features_a, features_b) -> float:
    """:func:`frechet_distance` between the Gaussians fitted to two feature sets ``[n_a, d]``, ``[n_b, d]``."""
    return frechet_distance(*feature_stats(features_a), *feature_stats(features_b))
