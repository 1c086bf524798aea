"""The sweep engine: the compiled program of every replica and the loop that drives it, chunked and resumable.

sweep (the job: ``sweep.run``, resume), plan (data splits, calls per epoch, whether λ moves on the host),
program (``Program.compile``: the compiled calls, their metric names and memory figure), loop (the training
loop and its ``Training`` record), history (per-step metrics, ``history.npz``'s columns), results
(``results.json`` and the over/underfit exclusion), population (PBT's fitness and compiled round),
pbt_records (PBT's events, lineages and winners). Imports every layer below it, the reference forecaster
(``jaxwvae.forecast``) and the devices (``jaxwvae.devices``) included; evaluation and reports sit above.
"""
