"""The run folder and the run's life: its files, checkpoints, the one-writer lock, signals, progress line.

Imports core and config only; the engine and the reports read and write runs through it.
"""
