"""The sweep engine: every replica in one compiled program, sharded over devices, chunked and resumable.

sweep (the job: ``sweep.run``, resume, results), plan (data splits, calls per epoch), program (the
compiled ``Engine``), loop (the training loop), history (per-step metrics, ``history.npz``'s columns),
host_rules (λ moved on the host), statsmodels_rule with statsmodels_series and statsmodels_pool (the
reference forecaster and its worker processes), forecast_reference (the offline comparison),
memory (the compiled program's bytes), distributed (processes, meshes, devices). Imports every
layer below it; evaluation and reports sit above.
"""
