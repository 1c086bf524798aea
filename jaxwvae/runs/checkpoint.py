"""Checkpoints of a whole sweep with orbax-checkpoint, in ``<out>/checkpoints``.

A checkpoint holds everything the rest of the run depends on: every replica's
state (parameters, Adam moments, key, λ, forecaster state, divergence flag,
step), the history recorded so far, the host-side forecaster's state and the
training seconds spent. The data order is not stored: each replica's order for
an epoch is a function of its key and the epoch (``train.epoch_order``).
Orbax writes a step into a temporary folder and renames it when complete, so a
kill during a save leaves the previous checkpoint intact; old ones are pruned.
A checkpoint that cannot be read all the same (a full disk, files lost or
overwritten, another config's) is skipped by :meth:`Checkpoints.restore_latest`
for the one before it, and moved out of the way into ``checkpoints-unreadable``.
:func:`restore_params` reads only the replicas' parameters of a run's newest
checkpoint, for evaluation. Only this module knows the checkpoint's layout.
"""

from __future__ import annotations

import pathlib
import shutil
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import serialization

from jaxwvae.errors import UserError
from jaxwvae.runs import rundir
from jaxwvae.runs.quiet_read import read_quietly
from jaxwvae.runs.rundir import UNREADABLE

KEEP = 2  # checkpoints kept on disk
FILES = "jaxwvae-files.json"  # in a step's folder: the size of every file orbax wrote there


class Unreadable(Exception):
    """One checkpoint could not be read; the message is one line saying why."""


def _file_sizes(folder: pathlib.Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != FILES}


def _check_files(folder: pathlib.Path) -> None:
    """Raise Unreadable if a file listed in the step folder's :data:`FILES` is missing or has another size.

    Checked before orbax reads: a short file would fail inside orbax's
    concurrent reads, which report it noisily; a step saved without the list
    (a kill right after orbax finished) is left to orbax.
    """
    try:
        expected = rundir.read_json(folder / FILES)
    except (OSError, UserError):
        return
    found = _file_sizes(folder)
    for name, size in expected.items():
        if name not in found:
            raise Unreadable(f"{name} is missing")
        if found[name] != size:
            raise Unreadable(f"{name} holds {found[name]} bytes, {size} were written")


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
        self.wait()  # orbax waits for the previous save anyway; then list its files
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
        _check_files(self.directory / str(step))

        def read():
            tree = self.manager.restore(step, args=ocp.args.StandardRestore(target))
            return (serialization.from_state_dict(states_template, tree["states"]),
                    {k: np.array(v) for k, v in tree["history"].items()},
                    {k: np.array(v) for k, v in tree["host"].items()}, float(tree["train_s"]))

        restored, failure = read_quietly(read)
        if failure is not None:
            raise Unreadable(failure)
        states, history, host, train_s = restored
        if set(history) != set(history_template) or set(host) != set(host_template):
            raise Unreadable("its arrays are not those of this run's config")
        return states, history, host, train_s

    def restore_latest(self, states_template, history_template: dict, host_template: dict, *,
                       move_aside: bool = True, stderr=None):
        """The newest readable checkpoint as ``(step, states, history, host_state, train_s)``, or None if none exists.

        A checkpoint that cannot be read is reported in one warning line and
        moved into ``checkpoints-unreadable/`` (so the run can save that step
        again; only where ``move_aside``, the primary process); the one before it
        is tried next. If checkpoints exist but none
        can be read, a UserError says so and how to start again.
        """
        stderr = stderr or sys.stderr
        steps = sorted(self._step_folders(), reverse=True)
        failed, restored = [], None
        for step in steps:
            try:
                restored = self.restore(step, states_template, history_template, host_template)
                break
            except Unreadable as e:
                failed.append((step, str(e)))
        if restored is not None:
            for bad, why in failed:
                moved = f"; moved to {self._move_aside(bad)}" if move_aside else ""
                print(f"warning: checkpoint {bad} unreadable ({why}){moved}; resuming from checkpoint {step}",
                      file=stderr)
            return (step, *restored)
        if failed:
            bad, why = failed[0]
            raise UserError(f"--resume: no readable checkpoint in {self.directory} (checkpoint {bad}: {why}); "
                            f"start the run again with --overwrite (same flags), or pass another --out")
        return None

    def _step_folders(self) -> list[int]:
        """Every step folder on disk, whether orbax lists it as complete or not."""
        listed = set(self.manager.all_steps())
        on_disk = {int(p.name) for p in self.directory.iterdir() if p.name.isdigit()} if self.directory.is_dir() else set()
        return sorted(listed | on_disk)

    def _move_aside(self, step: int) -> pathlib.Path:
        """Move the folder of ``step`` into ``<out>/checkpoints-unreadable/`` (numbered if taken) and forget it."""
        target_dir = self.directory.parent / UNREADABLE
        target_dir.mkdir(exist_ok=True)
        target, n = target_dir / str(step), 1
        while target.exists():
            target, n = target_dir / f"{step}.{n}", n + 1
        source = self.directory / str(step)
        if source.exists():
            shutil.move(str(source), str(target))
        self.manager.reload()
        return target

    def wait(self) -> None:
        """Wait for the save in flight, then record the files of every finished checkpoint (:data:`FILES`)."""
        self.manager.wait_until_finished()
        if jax.process_index() != 0:
            return
        for step in self.manager.all_steps():
            folder = self.directory / str(step)
            if folder.is_dir() and not (folder / FILES).exists():
                rundir.write_json(folder / FILES, _file_sizes(folder))

    def close(self) -> None:
        self.manager.close()


def restore_params(out, like):
    """Every replica's parameters in the newest checkpoint of the run in ``out``, as NumPy arrays.

    ``like`` is one replica's parameters, or their ``jax.eval_shape``: only its
    tree structure is used. Each returned leaf has the sweep's leading replica
    axis (padding replicas included, after the real ones) and the stored shape
    and dtype. Only the parameters are read, with an orbax partial restore: not
    Adam's moments, the history or the forecaster, whose arrays are not even
    opened. No checkpoint, an unreadable newest one, or parameters of another
    structure are a UserError.
    """
    directory = (pathlib.Path(out) / rundir.CHECKPOINTS).absolute()
    missing = UserError(f"{out}/{rundir.CHECKPOINTS} holds no checkpoint; the run's parameters are gone")
    if not directory.is_dir():
        raise missing
    item = {"states": {"params": jax.tree_util.tree_map(lambda _: np.zeros((), np.float32), like)}}
    restore_args = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
    options = ocp.CheckpointManagerOptions(create=False)  # reads only: nothing is saved or deleted
    with ocp.CheckpointManager(directory, options=options, item_handlers=ocp.PyTreeCheckpointHandler()) as manager:
        step = manager.latest_step()
        if step is None:
            raise missing

        def read():
            _check_files(directory / str(step))
            args = ocp.args.PyTreeRestore(item=item, restore_args=restore_args, partial_restore=True)
            return manager.restore(step, args=args)["states"]["params"]

        params, failure = read_quietly(read)
        if failure is not None:
            raise UserError(f"{out}/{rundir.CHECKPOINTS}: checkpoint {step} is unreadable ({failure})")
    if any(leaf is item_leaf for leaf, item_leaf in zip(jax.tree_util.tree_leaves(params),
                                                         jax.tree_util.tree_leaves(item["states"]["params"]))):
        raise UserError(f"{out}/{rundir.CHECKPOINTS}: checkpoint {step} holds parameters of another model")
    return params
