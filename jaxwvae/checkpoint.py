"""Checkpoints of a whole sweep with orbax-checkpoint, in ``<out>/checkpoints``.

A checkpoint holds everything the rest of the run depends on: every replica's
state (parameters, Adam moments, key, λ, forecaster state, divergence flag,
step), the history recorded so far, the host-side forecaster's state and the
training seconds spent. The data order is not stored: each replica's order for
an epoch is a function of its key and the epoch (``train.epoch_order``).
Orbax writes a step into a temporary folder and renames it when complete, so a
kill during a save leaves the previous checkpoint intact; old ones are pruned.
"""

from __future__ import annotations

import pathlib

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import serialization

from jaxwvae.errors import UserError

KEEP = 2  # checkpoints kept on disk


class Checkpoints:
    """Save and restore a sweep's ``{"states", "history", "host", "train_s"}`` by step."""

    def __init__(self, directory):
        self.directory = pathlib.Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=KEEP, create=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, states, history: dict, host_state: dict, train_s: float) -> None:
        """Start writing the checkpoint of ``step`` (asynchronously; see :meth:`wait`)."""
        tree = {
            "states": serialization.to_state_dict(states),
            "history": history,
            "host": host_state,
            "train_s": np.asarray(train_s, np.float64),
        }
        self.manager.save(step, args=ocp.args.StandardSave(tree))

    def restore(self, step: int, states_template, history_template: dict, host_template: dict):
        """The checkpoint of ``step`` laid out like the templates (states keep their shardings).

        Returns ``(states, history, host_state, train_s)``; a checkpoint whose
        arrays do not fit the templates (another config) is a UserError.
        """

        def abstract(x):
            sharding = getattr(x, "sharding", None)
            if isinstance(x, jax.Array):
                return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)
            return np.zeros(np.shape(x), np.asarray(x).dtype)

        target = {
            "states": jax.tree_util.tree_map(abstract, serialization.to_state_dict(states_template)),
            "history": jax.tree_util.tree_map(abstract, history_template),
            "host": jax.tree_util.tree_map(abstract, host_template),
            "train_s": np.zeros((), np.float64),
        }
        try:
            tree = self.manager.restore(step, args=ocp.args.StandardRestore(target))
            states = serialization.from_state_dict(states_template, tree["states"])
        except (ValueError, KeyError, TypeError) as e:
            raise UserError(f"checkpoint {self.directory}/{step} does not match this run's config ({e}); "
                            f"resume with the config saved beside it, or start a new --out") from e
        history = {k: np.array(v) for k, v in tree["history"].items()}
        host = {k: np.array(v) for k, v in tree["host"].items()}
        return states, history, host, float(tree["train_s"])

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()
