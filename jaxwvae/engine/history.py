"""The per-step metrics of every replica, kept on the host, and the per-replica columns of ``history.npz``."""

from __future__ import annotations

import numpy as np

from jaxwvae.config import SweepConfig, grid


class History:
    """Per-step metrics of every replica (padding included), filled chunk by chunk on the host.

    With population-based training it also keeps one column per round (``round_names``,
    :func:`jaxwvae.engine.population.round_names`); all of them are saved in every checkpoint.
    """

    def __init__(self, names, replicas: int, steps: int, round_names=(), rounds: int = 0):
        self.arrays = {name: np.full((replicas, steps), np.nan, np.float32) for name in names}
        self.arrays.update({name: np.full((replicas, rounds), np.nan, np.float32) for name in round_names})

    def record_round(self, k: int, record: dict) -> None:
        for name, values in record.items():
            self.arrays[name][:, k] = values

    def record(self, step: int, metrics: dict) -> None:
        for name, values in metrics.items():
            self.arrays[name][:, step:step + values.shape[1]] = values

    def last_median(self, name: str, step: int, replicas: int) -> float | None:
        """Median of ``name`` over the real replicas at step ``step`` (1-based; NaN if all diverged), None at 0."""
        return float(np.nanmedian(self.arrays[name][:replicas, step - 1])) if step else None


def replica_columns(config: SweepConfig, table: dict, replicas: int) -> dict:
    """``history.npz``'s per-replica columns: ``seeds``, ``point`` and ``hyper_<field>`` for each grid field."""
    points = grid.resolved_points(config)
    point = table["point"][:replicas]
    columns = {"seeds": table["seed"][:replicas].astype(np.int64), "point": point.astype(np.int64)}
    for name in grid.FIELDS:
        values = [grid.hyper(points[i])[name] for i in point]
        if name in ("lam", "lambda_rule"):
            columns[f"hyper_{name}"] = np.asarray(values, str)
        else:  # lambda_max None (unbounded) is stored as +inf
            columns[f"hyper_{name}"] = np.asarray([np.inf if v is None else v for v in values], np.float64)
    return columns
