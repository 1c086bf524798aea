"""One replica: its training state (parameters, Adam, λ, forecaster, key) and its pure training step.

The engine vmaps (or maps) these over replicas. Imports core and config only.
"""
