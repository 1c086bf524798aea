"""The sweep engine: every replica in one compiled program, sharded over devices, chunked and resumable.

sweep (plan, loop, results), memory (the compiled program's bytes), distributed (processes and
meshes), host λ rules (statsmodels). Imports every layer below it; evaluation and reports sit above.
"""
