"""A table cell: its sweep under ``--out``, pooled with the same cell of ``--pool`` folders, read whole or compact.

Every table and the λ study read their sweeps through :func:`cell`. A cell is one
run folder (``OUT/mnist_w``) and, pooled with it, the folders of the same name
under each ``--pool`` directory: sweeps whose configs agree in everything but the
seeds (and the run-time fields of :data:`RUNTIME_FIELDS`), no seed in two of them.
Seeds are extended by running the same command with ``--seed-list 10-29`` into a
new folder and pooling it.

Each finished folder gets a compact ``summary.json`` (:func:`summarise`): per
replica, the final test metrics and exclusion of ``results.json``, the FIDs
computed so far (per feature network and sample count), the training loss at
Table 3's iterations and the epoch means Figures 3–4's claim reads; with the
config, the command, the machine and the date. A folder holding only its
summary (the checkpoints gone, e.g. committed to a repository) is read from it;
then only pictures and Table 2's reconstructions, which need parameters, are
out of reach.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import pathlib
import platform
import sys

import numpy as np

from jaxwvae.config import SweepConfig
from jaxwvae.engine.results import classify
from jaxwvae.errors import UserError
from jaxwvae.reports import paper
from jaxwvae.reports.shared import one_replica
from jaxwvae.runs import rundir

SUMMARY = "summary.json"
SUMMARY_FORMAT = "jaxwvae sweep summary 1"
# Fields that change where or how often a run is saved, not what it computes.
RUNTIME_FIELDS = ("data_dir", "steps_per_call", "checkpoint_every", "replica_loop")


def identity(config: SweepConfig) -> dict:
    """The fields that make two sweeps the same experiment: all but the seeds and :data:`RUNTIME_FIELDS`."""
    fields = config.to_json()
    return {k: v for k, v in fields.items() if k not in ("seeds", *RUNTIME_FIELDS)}


def run_variant(config: SweepConfig, out: pathlib.Path, *, progress: bool = True, fitness_fn=None) -> dict:
    """Results of the sweep in ``out``: read if finished, resumed if killed, trained if absent.

    ``fitness_fn``: a PBT run's ``fid`` fitness (:func:`jaxwvae.engine.sweep.run`)."""
    from jaxwvae.engine import sweep

    if (out / rundir.CONFIG).exists():
        saved = SweepConfig.from_json(rundir.read_json(out / rundir.CONFIG)["config"])
        config = dataclasses.replace(config, **{f: getattr(saved, f) for f in RUNTIME_FIELDS})
        return sweep.run(config, out, resume=True, progress=progress, fitness_fn=fitness_fn)
    return sweep.run(config, out, progress=progress, fitness_fn=fitness_fn)


def machine() -> str:
    """This host in one line: CPU model, cores, OS (the device of the run is in the summary's ``device``)."""
    model = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"


# ---------------------------------------------------------------------- summaries
def _fid_caches(run_dir: pathlib.Path) -> dict:
    """``{"<features>/<samples>": [FID per replica]}`` from the folder's ``fid_*.json`` caches."""
    out = {}
    for path in sorted(run_dir.glob("fid_*.json")):
        stored = rundir.read_json(path)
        out[f"{stored['features']}/{stored['n']}"] = stored["fid"]
    return out


def _window_mean(row: np.ndarray, start: int, stop: int) -> float | None:
    """Mean of the finite values of ``row[start:stop]``; None when there are none."""
    window = row[max(start, 0):stop]
    finite = window[np.isfinite(window)]
    return float(finite.mean()) if finite.size else None


def _series_facts(history: dict, epochs: int) -> list[dict]:
    """Per replica: the training loss at Table 3's iterations and the last two epochs' means of T and rec."""
    loss, t_gap, rec = history["loss"], history["t_gap"], history["rec"]
    steps = loss.shape[1]
    per_epoch = steps // max(epochs, 1)
    last, before = steps - per_epoch, steps - 2 * per_epoch
    return [{
        "loss_at": {str(s): (float(loss[r, s - 1]) if np.isfinite(loss[r, s - 1]) else None)
                    for s in paper.TABLE3_STEPS if s <= steps},
        "last_epoch": {"t_gap": _window_mean(t_gap[r], last, steps), "rec": _window_mean(rec[r], last, steps),
                       "rec_before": _window_mean(rec[r], before, last) if before >= 0 else None},
    } for r in range(loss.shape[0])]


def summarise(run_dir) -> dict:
    """Build and write ``run_dir/summary.json`` from a finished run's config, results, history and FID caches."""
    run_dir = pathlib.Path(run_dir)
    for name in (rundir.CONFIG, rundir.RESULTS, rundir.HISTORY):
        if not (run_dir / name).exists():
            raise UserError(f"{run_dir} has no {name}: finish the run first (sweep.py --resume --out {run_dir})")
    saved = rundir.read_json(run_dir / rundir.CONFIG)
    results = rundir.read_json(run_dir / rundir.RESULTS)
    config = SweepConfig.from_json(saved["config"])
    with np.load(run_dir / rundir.HISTORY) as h:
        history = {k: h[k] for k in ("loss", "t_gap", "rec")}
    replicas = [{**run, **facts} for run, facts in zip(results["runs"], _series_facts(history, config.epochs))]
    summary = {
        "format": SUMMARY_FORMAT, "config": saved["config"], "command": saved.get("command"),
        "table_command": list(sys.argv), "machine": machine(), "device": results.get("device"),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "timing": results.get("timing"), "fid": _fid_caches(run_dir), "replicas": replicas,
        "pbt_winners": [{k: w[k] for k in ("population", "replica", "final_fitness", "schedule")}
                        for w in results.get("pbt", {}).get("winners", [])],
    }
    old = read_summary(run_dir)
    if old is not None and {k: v for k, v in old.items() if k not in ("date", "table_command")} == {
            k: v for k, v in summary.items() if k not in ("date", "table_command")}:
        return old  # unchanged: keep the file (and its date) as it is
    rundir.write_json(run_dir / SUMMARY, summary)
    return summary


def read_summary(run_dir) -> dict | None:
    """``run_dir/summary.json``, or None when absent; a file of another format is one clear error."""
    path = pathlib.Path(run_dir) / SUMMARY
    if not path.exists():
        return None
    summary = rundir.read_json(path)
    if not isinstance(summary, dict) or summary.get("format") != SUMMARY_FORMAT:
        raise UserError(f"{path} is not a sweep summary of this version ({SUMMARY_FORMAT!r}); delete it and "
                        "run the table again over the run folder")
    return summary


# ---------------------------------------------------------------------- cells
@dataclasses.dataclass(frozen=True)
class Cell:
    """One table cell's sweeps, pooled.

    ``runs``: every replica's results.json entry (classified by the current
    :func:`jaxwvae.engine.results.classify`), point-major, then folder, then seed —
    one sweep's order when each folder holds the next seeds. ``where[i]``: the
    (folder index, replica index in that folder) of replica ``i``.
    """

    config: SweepConfig  # the first folder's, with the pooled seeds
    folders: tuple[pathlib.Path, ...]
    summaries: tuple[dict, ...]
    runs: tuple[dict, ...]
    where: tuple[tuple[int, int], ...]

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.config.seeds

    @property
    def device(self) -> str:
        return "; ".join(dict.fromkeys(str(s.get("device")) for s in self.summaries))

    @property
    def train_s(self) -> float:
        """Training time summed over the pooled sweeps."""
        return float(sum((s.get("timing") or {}).get("train_s") or 0.0 for s in self.summaries))

    def facts(self, key: str) -> list:
        """Replica facts of the summaries (``loss_at``, ``last_epoch``) in the cell's order."""
        return [self.summaries[f]["replicas"][i][key] for f, i in self.where]

    def loss_at(self, replicas=None) -> dict[int, list]:
        """``{iteration: [training loss per image of each replica]}`` at Table 3's iterations every folder reached."""
        rows = self.facts("loss_at")
        if replicas is not None:
            rows = [rows[i] for i in replicas]
        common = set.intersection(*(set(r) for r in rows)) if rows else set()
        return {s: [r[str(s)] for r in rows] for s in paper.TABLE3_STEPS if str(s) in common}

    def fids(self, scorer) -> list:
        """FID per replica under ``scorer`` (a :class:`jaxwvae.evaluation.replica_fid.FidScorer`): read from
        the summaries, else computed from the checkpoints and added to the folder's summary."""
        key = f"{scorer.name}/{scorer.n}"
        per_folder = []
        for folder, summary in zip(self.folders, self.summaries):
            values = summary["fid"].get(key)
            if values is None:
                if not (folder / rundir.CHECKPOINTS).exists():
                    raise UserError(f"{folder / SUMMARY} has no FID on {scorer.name} with {scorer.n} samples and "
                                    "the run's checkpoints are gone: run the table with the FID settings it was "
                                    "summarised with, or over the full run folder")
                values = scorer(folder)
                summary["fid"][key] = values
                rundir.write_json(folder / SUMMARY, summary)
            per_folder.append(values)
        return [rundir.number(per_folder[f][i]) for f, i in self.where]

    def pbt_winners(self) -> list[dict]:
        """Each population's winner (a PBT run's, :func:`jaxwvae.engine.pbt_records.winners`), its
        ``replica`` an index into :attr:`runs`, in the order of the cell's seeds."""
        out = []
        for f, summary in enumerate(self.summaries):
            for w in summary.get("pbt_winners", []):
                out.append({**w, "replica": self.where.index((f, w["replica"]))})
        return out

    def has_parameters(self, r: int) -> bool:
        return (self.folders[self.where[r][0]] / rundir.CHECKPOINTS).exists()

    def parameters(self, r: int):
        """``(model, params)`` of replica ``r`` (a leading axis of 1), from its folder's checkpoints."""
        from jaxwvae.evaluation import generate

        f, i = self.where[r]
        if not self.has_parameters(r):
            raise UserError(f"{self.folders[f]} holds only its summary (no {rundir.CHECKPOINTS}/): replica "
                            f"{r} (seed {self.runs[r]['seed']})'s parameters are gone; run its sweep again")
        _, model, params = generate.load_run(self.folders[f])
        return model, one_replica(params, i)

    def history(self) -> dict | None:
        """Every folder's ``history.npz`` pooled in the cell's order, or None when one of them is gone."""
        if not all((f / rundir.HISTORY).exists() for f in self.folders):
            return None
        loaded = []
        for folder in self.folders:
            with np.load(folder / rundir.HISTORY) as h:
                loaded.append({k: h[k] for k in ("loss", "t_gap", "rec", "lam")})
        steps = {h["loss"].shape[1] for h in loaded}
        if len(steps) > 1:
            return None
        return {k: np.stack([loaded[f][k][i] for f, i in self.where]) for k in loaded[0]}


def _check_pool(first: SweepConfig, other: SweepConfig, where: pathlib.Path) -> None:
    mine, theirs = identity(first), identity(other)
    differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if differ:
        shown = ", ".join(f"{k} ({mine.get(k)!r} here, {theirs.get(k)!r} there)" for k in differ[:3])
        raise UserError(f"--pool {where}: its sweep differs in more than the seeds: {shown}; pool only runs of "
                        "the same command with other --seed-list")


def _folder(run_dir: pathlib.Path, config: SweepConfig | None, progress: bool,
            fitness_fn=None) -> tuple[SweepConfig, dict]:
    """``(config, summary)`` of one folder: trained, resumed or read when ``config`` is given, else read only."""
    summary = read_summary(run_dir)
    whole = (run_dir / rundir.CHECKPOINTS).exists() or (run_dir / rundir.RESULTS).exists()
    if summary is not None and not whole:  # compact: the summary is all there is
        saved = SweepConfig.from_json(summary["config"])
        if config is not None:
            _check_pool(config, saved, run_dir)
            if set(saved.seeds) != set(config.seeds):
                raise UserError(f"{run_dir / SUMMARY} holds seeds {list(saved.seeds)}, the command asks for "
                                f"{list(config.seeds)}: pass --seed-list {','.join(map(str, saved.seeds))}")
        return saved, summary
    if config is not None:
        run_variant(config, run_dir, progress=progress, fitness_fn=fitness_fn)
    elif not (run_dir / rundir.CONFIG).exists():
        raise UserError(f"--pool: {run_dir} holds neither a run nor a {SUMMARY}")
    summary = summarise(run_dir)
    return SweepConfig.from_json(summary["config"]), summary


def cell(config: SweepConfig, run_dir, pools=(), *, progress: bool = True, fitness_fn=None) -> Cell:
    """The cell ``run_dir`` (trained, resumed or read for ``config``) pooled with ``pools`` (read only).

    ``fitness_fn``: the ``fid`` fitness of a PBT sweep, if it is trained here.

    Refuses, in one line, a pooled sweep that differs in more than the seeds and a seed in two folders.
    """
    folders = [pathlib.Path(run_dir), *map(pathlib.Path, pools)]
    first, summary = _folder(folders[0], config, progress, fitness_fn)
    configs, summaries = [first], [summary]
    for folder in folders[1:]:
        other, summary = _folder(folder, None, progress)
        _check_pool(first, other, folder)
        configs.append(other)
        summaries.append(summary)
    seen: dict[int, pathlib.Path] = {}
    for folder, c in zip(folders, configs):
        for s in c.seeds:
            if s in seen:
                raise UserError(f"seed {s} is in both {seen[s]} and {folder}: pool sweeps of disjoint seeds "
                                "(run the extension with --seed-list of new seeds)")
            seen[s] = folder
    points = max(1, len(first.grid))
    where = [(f, p * len(c.seeds) + j) for p in range(points) for f, c in enumerate(configs) for j in range(len(c.seeds))]
    runs = []
    for f, i in where:
        run = {k: v for k, v in summaries[f]["replicas"][i].items() if k not in ("loss_at", "last_epoch")}
        run = rundir.read_results_runs([run])[0]  # null metrics (a diverged replica's) as NaN
        run["excluded"], run["reason"] = classify(run)
        runs.append(run)
    seeds = tuple(s for c in configs for s in c.seeds)
    return Cell(dataclasses.replace(first, seeds=seeds), tuple(folders), tuple(summaries), tuple(runs), tuple(where))
