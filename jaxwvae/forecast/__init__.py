"""λ moved on the host: where λ moves, the host rules, and the reference forecaster (statsmodels' ARIMA).

host (whether λ moves on the host, the ``HostRule`` protocol, ``HostArima`` and ``host_rule``),
statsmodels_rule (the reference forecaster) with series (one replica's ARIMA fits) and pool (the worker
processes that hold them), reference (statsmodels' forecasts of a saved history, and the agreement of two
forecasters). Imports only core and config; the engine imports it. statsmodels_rule,
series, pool and reference import no JAX.
"""
