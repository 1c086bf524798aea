"""The λ study: the readings of the paper's λ schedule, side by side in one program, and what they give.

``experiments/lambda_study.py`` calls :func:`run`. Every reading of the paper's
λ (Section 3's adaptive rule and Section 4's "λ varies uniformly between 0 and
20", with the choices the text leaves open) is a grid point of one ELBO_W sweep
on MNIST with the paper's model, batch 100 and 15 epochs; the phase map over
the rule's step ``c`` and upper bound ``λ_max`` adds the points it needs to the
same program. ELBO_KL and WAE-MMD, which are other objectives, run as two more
sweeps on the same seeds. Each replica is scored as in the tables: test
metrics, collapse (test KL < 1 nat, ``jaxwvae.engine.results.MIN_KL``) and FID on
the CNN features (``jaxwvae.evaluation.replica_fid.replica_fids``).

T is reported as the library's T = W2² − KL (the paper prints 2T), per image.
"""

from __future__ import annotations

import pathlib

import numpy as np

from jaxwvae.config import grid, paper_mnist, readings
from jaxwvae.engine.results import MIN_KL
from jaxwvae.evaluation import replica_fid
from jaxwvae.reports import cells, paper, plots, stats
from jaxwvae.reports.table3 import table3_markdown, table3_row, table3_tests
from jaxwvae.runs import rundir

READINGS = readings.READINGS
# The phase map: the adaptive rule (λ₀ = 1) over c x λ_max (None: unbounded).
PHASE_C = (0.05, 0.005, 0.0005)
PHASE_LAMBDA_MAX = (2.0, 20.0, None)
FIELD_ORDER = tuple(grid.FIELDS)


def phase_point(c: float, lam_max) -> dict:
    point = {"lambda_rule": "arima", "lam": "1", "lambda_c": c}
    if lam_max is not None:
        point["lambda_max"] = lam_max
    return point


def _key(point: dict) -> tuple:
    """A point as a grid tuple, fields in :data:`grid.FIELDS` order (so equal points compare equal)."""
    return tuple((k, point[k]) for k in FIELD_ORDER if k in point)


def study_points(names=None) -> tuple[list[tuple], dict, dict]:
    """``(grid points, reading -> point index, (c, λ_max) -> point index)``; shared points appear once.

    ``names``: a subset of :data:`READINGS` to run alone (no phase map); None runs them all and the map.
    """
    points, index = [], {}

    def add(point):
        key = _key(point)
        if key not in index:
            index[key] = len(points)
            points.append(key)
        return index[key]

    readings = {name: add(point) for name, (_, point) in READINGS.items() if names is None or name in names}
    phase = {} if names is not None else {
        (c, m): add(phase_point(c, m)) for c in PHASE_C for m in PHASE_LAMBDA_MAX}
    return points, readings, phase


def check_names(names) -> tuple | None:
    """``names`` as a tuple in :data:`READINGS` order, or None for all; one clear error for an unknown name."""
    if names is None:
        return None
    unknown = sorted(set(names) - set(READINGS))
    if unknown or not names:
        raise ValueError(f"unknown reading(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(READINGS)}")
    return tuple(n for n in READINGS if n in names)


def w_config(common: dict, names=None):
    points, _, _ = study_points(names)
    fields = {k: v for k, v in common.items() if k not in ("dataset", "objective", "grid")}
    return paper_mnist(objective="w", grid=tuple(points), **fields).resolved()


def reproduces_figures(run: dict, last_epoch: dict) -> bool:
    """Figures 3–4's claim for one replica: T → 0 while the reconstruction keeps falling, without collapse.

    Read as: no collapse (test KL >= 1 nat), |T| over the last epoch below 1 nat
    (a twentieth of the ~20 nats T reaches at λ = 1), and the last epoch's mean
    training reconstruction below that of the epoch before it (``last_epoch``: the
    cell's epoch means, :func:`jaxwvae.reports.cells.summarise`).
    """
    t, rec, before = last_epoch["t_gap"], last_epoch["rec"], last_epoch["rec_before"]
    if t is None or rec is None or before is None:
        return False
    return bool(run["kl"] >= MIN_KL and abs(t) < 1.0 and rec < before)


def summarise(indices, runs, fids, last_epochs) -> dict:
    """The study's numbers for a set of replicas (one reading or one phase cell)."""
    rs = [runs[i] for i in indices]
    collapsed = sum(r["kl"] < MIN_KL for r in rs)
    figures = [reproduces_figures(runs[i], last_epochs[i]) for i in indices]
    return {
        "n": len(rs),
        "collapsed": stats.proportion(collapsed, len(rs)),
        "reproduces_figures_3_4": stats.proportion(sum(figures), len(rs)),
        "fid": stats.summary([fids[i] for i in indices]),
        "t_final": stats.summary([r["t_gap"] for r in rs]),
        "kl": stats.summary([r["kl"] for r in rs]),
        "rec": stats.summary([r["rec"] for r in rs]),
        "lam_final": stats.summary([r["lam_final"] for r in rs]),
        "fid_per_seed": {str(r["seed"]): fids[i] for r, i in zip(rs, indices)},
    }


def run(out, common: dict, *, fid_samples: int = replica_fid.FID_SAMPLES, feature_recipe: dict | None = None,
        progress: bool = True, names=None, pool=()) -> dict:
    """Run (or read, or resume) the study's three sweeps under ``out``; write ``study.json``, ``study.md``, PNGs.

    ``names``: run only these readings (see :func:`study_points`); their grid is its own program.
    ``pool``: further folders whose sweeps are pooled with ``out``'s (:func:`jaxwvae.reports.cells.cell`);
    the pictures need every pooled folder's ``history.npz``.
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = common.get("data_dir")
    names = check_names(names)
    _, reading_index, phase_index = study_points(names)
    config = w_config(common, names)
    sweeps = {"w": (config, out / "mnist_w_grid")}
    base = {k: v for k, v in common.items() if k not in ("dataset", "objective", "grid", "lam", "lambda_rule")}
    for objective in ("kl", "wae"):
        sweeps[objective] = (paper_mnist(objective=objective, **base).resolved(), out / f"mnist_{objective}")
    found = {name: cells.cell(c, d, [pathlib.Path(p) / d.name for p in pool], progress=progress)
             for name, (c, d) in sweeps.items()}
    scorer = replica_fid.FidScorer("mnist", data_dir, None, feature_recipe, fid_samples)
    fids = {name: c.fids(scorer) for name, c in found.items()}
    runs = list(found["w"].runs)
    last_epochs = found["w"].facts("last_epoch")
    n_seeds = len(found["w"].seeds)
    config = found["w"].config

    def members(point: int) -> list[int]:
        return list(range(point * n_seeds, (point + 1) * n_seeds))

    readings = {}
    for name in reading_index:
        label = READINGS[name][0]
        idx = members(reading_index[name])
        readings[name] = {"label": label, "point": reading_index[name],
                          "hyper": runs[idx[0]]["hyper"], **summarise(idx, runs, fids["w"], last_epochs)}
    others = {name: {"label": tables_label(name), "fid": stats.summary(fids[name]),
                     "collapsed": stats.proportion(sum(r["kl"] < MIN_KL for r in found[name].runs),
                                                   len(found[name].runs)),
                     "rec": stats.summary([r["rec"] for r in found[name].runs])}
              for name in ("kl", "wae")}
    phase = [{"c": c, "lambda_max": m, "point": i,
              **{k: v for k, v in summarise(members(i), runs, fids["w"], last_epochs).items()
                 if k in ("n", "collapsed", "fid")}}
             for (c, m), i in phase_index.items()]
    best = best_reading(readings)
    ordering = table1_ordering(readings, fids, reading_index, members)
    table3 = (table3_report(found, members, reading_index) if {"section3", "fixed1"} <= set(reading_index) else None)
    report = {
        "dataset": "mnist", "seeds": list(config.seeds), "epochs": config.epochs, "batch_size": config.batch_size,
        "features": scorer.name, "fid_samples": fid_samples, "t_convention": "T = W2² − KL per image (paper: 2T)",
        "device": found["w"].device, "train_s": {k: c.train_s for k, c in found.items()},
        "readings": readings, "others": others, "phase": phase, "best": best, "ordering": ordering,
        **({"table3": table3} if table3 else {}),
        "runs": {name: [str(f) for f in c.folders] for name, c in found.items()},
    }
    history = found["w"].history()
    report["pictures"] = history is not None  # a folder holding only its summary has no training curves
    rundir.write_json(out / "study.json", report)
    rundir.atomic_write_bytes(out / "study.md", markdown(report).encode())
    if history is not None:
        write_pictures(out, report, history, members)
    return report


def table3_report(found: dict, members, reading_index: dict) -> dict:
    """Table 3 (loss at iterations 100 … 5,000, with tests) from the study's own sweeps.

    Its ELBO_W rows are readings ``section3`` (the table's adaptive row) and ``fixed1`` (λ = 1), the same
    configs as ``jaxwvae.reports.paper.VARIANTS``; ELBO_KL is the study's KL sweep.
    """
    variants = {v.name: v for v in paper.VARIANTS["mnist"]}
    batch = found["w"].config.batch_size
    rows = [table3_row(variants[name], found["w"].loss_at(members(reading_index[reading])), batch,
                       len(members(reading_index[reading])))
            for name, reading in (("w", "section3"), ("w_fixed", "fixed1"))]
    rows.append(table3_row(variants["kl"], found["kl"].loss_at(), batch, len(found["kl"].seeds)))
    return {"dataset": "mnist", "rows": rows, "tests": table3_tests(rows)}


def tables_label(objective: str) -> str:
    return {"kl": "ELBO_KL", "wae": "WAE-MMD (λ = 10)"}[objective]


def best_reading(readings: dict) -> str | None:
    """The faithful reading (not the λ = 1 reference) with the fewest collapsed seeds, then the lowest mean FID."""
    pool = {k: v for k, v in readings.items() if k != "fixed1" and v["fid"]["mean"] is not None}
    if not pool:
        return None
    return min(pool, key=lambda k: (pool[k]["collapsed"]["fraction"], pool[k]["fid"]["mean"]))


def table1_ordering(readings: dict, fids: dict, reading_index: dict, members) -> dict:
    """Table 1's claimed order W < WAE-MMD < KL in FID, tested one-sided for every reading."""
    out = {"wae_vs_kl": stats.compare(fids["wae"], fids["kl"], alternative="less")}
    for name in readings:
        w = [fids["w"][i] for i in members(reading_index[name])]
        out[name] = {"w_vs_wae": stats.compare(w, fids["wae"], alternative="less"),
                     "w_vs_kl": stats.compare(w, fids["kl"], alternative="less")}
    return out


def markdown(report: dict) -> str:
    n = len(report["seeds"])
    lines = [
        f"λ study on MNIST: ELBO_W, {report['epochs']} epochs, batch {report['batch_size']}, seeds "
        f"{report['seeds'][0]}–{report['seeds'][-1]} (n = {n} per reading), every reading in one program. "
        f"FID of {report['fid_samples']} prior samples on the CNN features ({report['features']}); "
        f"{report['t_convention']}. Intervals: 95 %, Student t for means, Wilson for fractions.", "",
        "| reading | collapsed (KL < 1) | Fig. 3–4 reproduced | FID | final T | test rec. | final λ |",
        "|---|---|---|---|---|---|---|"]
    for name, r in report["readings"].items():
        lines.append(f"| {r['label']} | {stats.format_proportion(r['collapsed'])} | "
                     f"{stats.format_proportion(r['reproduces_figures_3_4'])} | {stats.format_summary(r['fid'])} | "
                     f"{stats.format_summary(r['t_final'], 2)} | {stats.format_summary(r['rec'])} | "
                     f"{stats.format_summary(r['lam_final'], 2)} |")
    for name, r in report["others"].items():
        lines.append(f"| {r['label']} (separate sweep, same seeds) | {stats.format_proportion(r['collapsed'])} | – | "
                     f"{stats.format_summary(r['fid'])} | – | {stats.format_summary(r['rec'])} | – |")
    lines += ["", f"Best faithful reading (fewest collapsed seeds, then lowest mean FID): **{report['best']}**.", "",
              "Table 1's order W < WAE-MMD < KL in FID, one-sided Welch t and Mann–Whitney U p-values:", "",
              "| reading | W < WAE-MMD: Welch p, MWU p | W < KL: Welch p, MWU p |", "|---|---|---|"]
    o = report["ordering"]
    for name, r in report["readings"].items():
        lines.append(f"| {r['label']} | {stats.format_comparison(o[name]['w_vs_wae'])} | "
                     f"{stats.format_comparison(o[name]['w_vs_kl'])} |")
    lines += ["", f"WAE-MMD < KL: {stats.format_comparison(o['wae_vs_kl'])}."]
    if report["phase"]:
        lines += ["", "Phase map (adaptive rule, λ₀ = 1): collapsed fraction and mean FID over c x λ_max:", "",
                  "| c \\ λ_max | " + " | ".join("none" if m is None else f"{m:g}" for m in PHASE_LAMBDA_MAX) + " |",
                  "|---|" + "---|" * len(PHASE_LAMBDA_MAX)]
    for c in PHASE_C if report["phase"] else ():
        cells = []
        for m in PHASE_LAMBDA_MAX:
            cell = next(p for p in report["phase"] if p["c"] == c and p["lambda_max"] == m)
            fid = cell["fid"]["mean"]
            cells.append(f"{cell['collapsed']['k']}/{cell['n']}, FID {fid:.1f}" if fid is not None else "–")
        lines.append(f"| {c:g} | " + " | ".join(cells) + " |")
    if "table3" in report:
        lines += ["", "Table 3 from the same sweeps (the paper's rows: Section 3's ELBO_W, ELBO_W at λ = 1, "
                  "ELBO_KL):", "", table3_markdown(report["table3"]).rstrip()]
    return "\n".join(lines) + "\n"


def write_pictures(out: pathlib.Path, report: dict, history: dict, members) -> None:
    """``phase_map.png``, ``lambda_trajectories.png`` and ``figures3_4.png`` (the best reading) in ``out``."""
    plt = plots._pyplot()
    if report["phase"]:
        _phase_map(plt, out, report)

    fig, ax = plt.subplots(figsize=(8, 4.2))
    for name, r in report["readings"].items():
        lam = history["lam"][members(r["point"])]
        ax.plot(np.nanmedian(lam, axis=0), label=r["label"], linewidth=1)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("training step")
    ax.set_ylabel("λ (median over seeds)")
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    plots._save(fig, out / "lambda_trajectories.png")
    plt.close(fig)

    best = report["best"]
    if best is None:
        return
    idx = members(report["readings"][best]["point"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, (name, title) in zip(axes, (("t_gap", "T = W2² − KL (Figure 3)"), ("rec", "reconstruction (Figure 4)"))):
        for i in idx:
            ax.plot(plots.moving_average(history[name][i], 50), linewidth=0.8)
        if name == "t_gap":
            ax.axhline(0.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training step")
    fig.suptitle(f"best reading: {report['readings'][best]['label']}; one line per seed, "
                 f"moving average over 50 steps", fontsize=9)
    fig.tight_layout()
    plots._save(fig, out / "figures3_4.png")
    plt.close(fig)


def _phase_map(plt, out: pathlib.Path, report: dict) -> None:
    """``phase_map.png``: collapsed fraction and mean FID over c x λ_max."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (what, title) in zip(axes, (("collapsed", "fraction of seeds collapsed"), ("fid", "mean FID (CNN)"))):
        grid_values = np.full((len(PHASE_C), len(PHASE_LAMBDA_MAX)), np.nan)
        for cell in report["phase"]:
            value = cell["collapsed"]["fraction"] if what == "collapsed" else cell["fid"]["mean"]
            grid_values[PHASE_C.index(cell["c"]), PHASE_LAMBDA_MAX.index(cell["lambda_max"])] = (
                np.nan if value is None else value)
        image = ax.imshow(grid_values, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(grid_values):
            ax.text(j, i, f"{v:.2f}" if what == "collapsed" else f"{v:.1f}", ha="center", va="center", color="w")
        ax.set_xticks(range(len(PHASE_LAMBDA_MAX)), ["none" if m is None else f"{m:g}" for m in PHASE_LAMBDA_MAX])
        ax.set_yticks(range(len(PHASE_C)), [f"{c:g}" for c in PHASE_C])
        ax.set_xlabel("λ_max")
        ax.set_ylabel("c")
        ax.set_title(title, fontsize=10)
        fig.colorbar(image, ax=ax)
    fig.suptitle(f"adaptive λ (λ₀ = 1) on MNIST, {len(report['seeds'])} seeds per cell", fontsize=9)
    fig.tight_layout()
    plots._save(fig, out / "phase_map.png")
    plt.close(fig)
