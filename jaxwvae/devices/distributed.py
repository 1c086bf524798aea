"""Running one sweep across several processes (hosts) with ``jax.distributed``, and the devices it runs on.

Every process runs the same command; the replica axis is sharded over the
devices of all processes (:func:`replica_shardings`), each process reads the
data itself, and only process 0 writes the outputs, gathered from all.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxwvae.errors import UserError


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
               auto: bool = False) -> None:
    """Join a multi-process run: explicitly (all three given) or by JAX's cluster auto-detection (``auto``).

    Explicit: ``coordinator="HOST:PORT"`` (process 0's address), the number of
    processes and this process's id in ``[0, num_processes)``. ``auto`` lets
    ``jax.distributed.initialize()`` read the cluster (SLURM, Open MPI, TPU pod
    slices, GKE). Neither: a single-process run. On CPU the processes talk
    through gloo collectives.
    """
    explicit = [coordinator, num_processes, process_id]
    if all(v is None for v in explicit) and not auto:
        return
    if auto and any(v is not None for v in explicit):
        raise UserError("pass --distributed (auto-detection) or --coordinator/--num-processes/--process-id, not both")
    if not auto:
        if any(v is None for v in explicit):
            raise UserError("a multi-process run needs all of --coordinator HOST:PORT, --num-processes N "
                            "and --process-id K")
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise UserError(f"--process-id {process_id} must be in [0, --num-processes {num_processes})")
        if ":" not in coordinator:
            raise UserError(f"--coordinator {coordinator!r} must be HOST:PORT, e.g. 127.0.0.1:12355")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if auto:
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id)


def is_primary() -> bool:
    """True in the process that writes the outputs (process 0)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches ``name`` (nothing to do in a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def replica_shardings() -> tuple[NamedSharding, NamedSharding]:
    """``(sharded, replicated)``: a leading replica axis split over every device of the run; a whole copy on each."""
    mesh = Mesh(np.array(jax.devices()), ("replica",))
    return NamedSharding(mesh, PartitionSpec("replica")), NamedSharding(mesh, PartitionSpec())


def put(array: np.ndarray, sharding) -> jax.Array:
    """A global array with ``sharding`` from a host array that every process holds whole."""
    array = np.asarray(array)
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def to_host(tree):
    """Every leaf of a (possibly multi-process) sharded pytree, whole, as a NumPy array."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree_util.tree_map(np.array, tree)


def describe_devices() -> str:
    """The devices of the run in one line, e.g. ``gpu: 8 x NVIDIA H100 over 2 processes``."""
    devices = jax.devices()
    kinds = sorted({d.device_kind for d in devices})
    text = f"{devices[0].platform}: {len(devices)} x {', '.join(kinds)}"
    if jax.process_count() > 1:
        text += f" over {jax.process_count()} processes"
    return text
