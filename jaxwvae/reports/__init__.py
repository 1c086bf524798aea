"""The paper's results: Tables 1–3, the λ study, their statistics (stats) and the plots; runs sweeps
through the engine.

The top layer below the command line: it may import every layer.
"""
