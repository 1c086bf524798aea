"""How much device memory a sweep needs, estimated before it compiles, and a clear error if it will not fit.

Per replica the compiled chunk holds the state (parameters and Adam's two
moments: 3 P floats for P parameters) and, while it steps, about as much
again in temporaries (gradients, Adam's update, activations). Every device
also holds the training images (uint8) and its replicas' data orders. On CPU
(no device memory limit) nothing is checked.
"""

from __future__ import annotations

import math

import jax

from jaxwvae.errors import UserError

FLOAT = 4
SAFETY = 0.9  # use at most this share of the device's memory


def param_count(in_dim: int, hidden, latent_dim: int) -> int:
    """Parameters of the MLP VAE (encoder to 2 * latent, decoder mirrored)."""
    enc = [in_dim, *hidden, 2 * latent_dim]
    dec = [latent_dim, *reversed(hidden), in_dim]
    return sum(a * b + b for widths in (enc, dec) for a, b in zip(widths, widths[1:]))


def replica_bytes(in_dim: int, hidden, latent_dim: int, batch_size: int, n_train: int) -> int:
    """Device bytes one replica needs while training (state + temporaries + its data order)."""
    p = param_count(in_dim, hidden, latent_dim)
    activations = batch_size * (3 * in_dim + 4 * sum(hidden) + 6 * latent_dim)
    return FLOAT * (6 * p + activations + n_train)


def estimate(config, n_train: int, in_dim: int, replicas_per_device: int) -> int:
    """Bytes per device for ``replicas_per_device`` replicas plus the shared images."""
    per = replica_bytes(in_dim, config.hidden, config.latent_dim, config.batch_size, n_train)
    return replicas_per_device * per + n_train * in_dim


def device_limit() -> int | None:
    """The first device's memory in bytes, or None where the backend does not say (CPU)."""
    stats = jax.local_devices()[0].memory_stats() or {}
    return stats.get("bytes_limit")


def max_replicas(config, n_train: int, in_dim: int, limit: int, n_devices: int = 1) -> int:
    """The most replicas whose estimate fits ``SAFETY * limit`` bytes on each of ``n_devices`` devices."""
    per = replica_bytes(in_dim, config.hidden, config.latent_dim, config.batch_size, n_train)
    return max(0, int((SAFETY * limit - n_train * in_dim) // per)) * n_devices


def check_fits(config, n_train: int, in_dim: int, replicas: int, limit: int | None = None) -> int:
    """Return the per-device estimate; raise a UserError saying what to do if it exceeds the limit."""
    n_dev = jax.device_count()
    per_device = math.ceil(replicas / n_dev)
    need = estimate(config, n_train, in_dim, per_device)
    limit = device_limit() if limit is None else limit
    if limit is not None and need > SAFETY * limit:
        fits = max_replicas(config, n_train, in_dim, limit, n_dev)
        raise UserError(
            f"--seeds {replicas}: the sweep needs about {need / 2**30:.1f} GiB per device and a device has "
            f"{limit / 2**30:.1f} GiB; at most {fits} seeds fit on {n_dev} device(s) - pass --seeds {fits} "
            f"(and --seed-list for the rest in a second run), use more devices, or a smaller --batch-size")
    return need
