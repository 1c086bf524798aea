"""TensorBoard: one run per replica under ``OUT/tensorboard/``, named by grid point and seed, written as it trains.

``sweep.py --tensorboard`` writes, per replica, every step's training metrics (``train/loss``, ``train/rec``,
``train/w2``, ``train/kl``, ``train/t_gap``, ``train/lam``: the values of history.npz at step t+1), the
replica's hyperparameters (the hparams plugin: every config field and the grid point's), and at the end its
test metrics (``test/...``). It goes through tensorboardX (``pip install 'jaxwvae[tensorboard]'``), which
needs no TensorFlow. A resumed run starts new event files with ``purge_step`` at the checkpoint's step, so
TensorBoard drops what an interrupted run wrote after it.

    tensorboard --logdir OUT/tensorboard
"""

from __future__ import annotations

import pathlib
import re

import numpy as np

from jaxwvae.errors import UserError

FOLDER = "tensorboard"


def run_name(seed: int, point: dict) -> str:
    """``lam=0.5,lambda_c=0.005_seed3`` (``seed3`` without a grid): a folder name, one per replica."""
    label = ",".join(f"{k}={v}" for k, v in point.items())
    name = f"{label}_seed{seed}" if label else f"seed{seed}"
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", name)


def _hparam(value):
    return value if isinstance(value, (bool, int, float, str)) else str(value)


class TensorBoardRuns:
    """A writer per replica; :meth:`write` adds the steps recorded since its last call."""

    def __init__(self, out, names: list[str], hparams: list[dict], metrics: tuple[str, ...], *, start: int = 0):
        try:
            from tensorboardX import SummaryWriter
            from tensorboardX.summary import hparams as hparams_summary
        except ImportError:
            raise UserError("--tensorboard needs tensorboardX; pip install 'jaxwvae[tensorboard]'") from None
        folder = pathlib.Path(out) / FOLDER
        self.metrics, self.done = metrics, start
        self.writers = [SummaryWriter(str(folder / name), purge_step=start or None, flush_secs=30) for name in names]
        if start == 0:
            for writer, hp in zip(self.writers, hparams):
                tags = {f"train/{m}": 0.0 for m in metrics}  # the scalars the hparams plugin lists per run
                for summary in hparams_summary({k: _hparam(v) for k, v in hp.items()}, tags):
                    writer.file_writer.add_summary(summary)

    def write(self, arrays: dict, upto: int) -> None:
        """Steps ``done .. upto - 1`` of history ``arrays`` (replicas x steps), as global steps ``done+1 .. upto``."""
        for t in range(self.done, upto):
            for r, writer in enumerate(self.writers):
                for m in self.metrics:
                    value = float(arrays[m][r, t])
                    if np.isfinite(value):  # a diverged replica's steps are NaN: left out, as in the plots
                        writer.add_scalar(f"train/{m}", value, t + 1)
        self.done = max(self.done, upto)

    def finish(self, runs: list[dict], step: int) -> None:
        """The final test metrics of each replica (results.json's ``runs``) at the last step; close."""
        for writer, run in zip(self.writers, runs):
            for key, value in run.items():
                if isinstance(value, float) and np.isfinite(value):
                    writer.add_scalar(f"test/{key}", value, step)
        self.close()

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
