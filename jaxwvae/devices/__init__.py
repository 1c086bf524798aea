"""The machines a run uses: processes and meshes (distributed) and XLA's memory figures (memory).

distributed (``jax.distributed`` across processes, the replica sharding over every device, host ↔ device
transfers, the devices in one line), memory (bytes per device of a compiled call, whether a sweep fits).
Imports only errors; the engine and the command line import it.
"""
