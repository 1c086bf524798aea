"""Whether a sweep fits in device memory, from XLA's own analysis of the compiled chunk, before anything is allocated.

The sweep compiles its chunk on abstract arguments (shapes, dtypes and
shardings; no array exists yet) and reads ``memory_analysis()``: arguments +
temporaries + outputs not aliased to the donated state, per device. That
figure covers everything the architecture, the optimiser, the λ rule and XLA's
own buffers need, so nothing here repeats the model. A run with population-based
training also compiles its round and its validation evaluation (the validation
images are one of its arguments) and takes the larger of its calls
(:func:`with_pbt`). On CPU (no device memory limit) nothing is checked.
"""

from __future__ import annotations

import math

import jax

from jaxwvae.errors import UserError

SAFETY = 0.9  # use at most this share of the device's memory


def compiled_bytes(analysis) -> int | None:
    """Bytes per device of a compiled call: arguments + temporaries + outputs not aliased to donated inputs."""
    if analysis is None:
        return None
    return int(analysis.argument_size_in_bytes + analysis.temp_size_in_bytes
               + analysis.output_size_in_bytes - analysis.alias_size_in_bytes)


def with_pbt(chunk: int | None, pbt: int | None, resident: int) -> int | None:
    """Bytes per device of a run whose PBT calls (round, fitness) run between its training calls.

    ``chunk`` and ``pbt`` are :func:`compiled_bytes` of the largest training call and of the larger
    PBT call; ``resident`` what stays on a device between calls without being a PBT call's argument
    (the training images and the epoch's orders, arguments of the chunk only). The states are
    arguments of every call, so counted once in each figure.

    >>> with_pbt(100, 80, 30), with_pbt(100, 60, 30), with_pbt(100, None, 30), with_pbt(None, 60, 30)
    (110, 100, 100, 90)
    """
    if pbt is None:
        return chunk
    return max(chunk or 0, pbt + resident)


def device_limit() -> int | None:
    """The first device's memory in bytes, or None where the backend does not say (CPU)."""
    stats = jax.local_devices()[0].memory_stats() or {}
    return stats.get("bytes_limit")


def max_replicas(need: int, shared: int, per_device: int, limit: int, n_devices: int = 1) -> int:
    """The most replicas that fit ``SAFETY * limit`` on each device, scaling ``need`` linearly in replicas.

    ``need`` is the compiled figure for ``per_device`` replicas on one device, ``shared`` the part of it
    that does not grow with the replicas (the training images).
    """
    per_replica = max(1, (need - shared)) / max(1, per_device)
    return max(0, int((SAFETY * limit - shared) // per_replica)) * n_devices


def check_fits(need: int | None, *, replicas: int, shared: int, limit: int | None = None) -> None:
    """Raise a UserError saying what to do if ``need`` bytes per device exceed ``SAFETY`` of the limit."""
    limit = device_limit() if limit is None else limit
    if need is None or limit is None or need <= SAFETY * limit:
        return
    n_dev = jax.device_count()
    fits = max_replicas(need, shared, math.ceil(replicas / n_dev), limit, n_dev)
    raise UserError(
        f"{replicas} replicas: the sweep needs {need / 2**30:.1f} GiB per device (XLA's memory analysis) and a "
        f"device has {limit / 2**30:.1f} GiB; at most {fits} replicas fit on {n_dev} device(s) - pass fewer "
        f"--seeds or grid points (and --seed-list for the rest in a second run), use more devices, or a "
        f"smaller --batch-size")
