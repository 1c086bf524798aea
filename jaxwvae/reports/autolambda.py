"""Does a λ that tunes itself beat a fixed one? ELBO_W's automatic λ rules against the fixed grid, on FID.

``experiments/autolambda_study.py`` calls :func:`run`. Every arm of ELBO_W is a grid point of one
sweep (the paper's model, batch 100, 15 epochs by default) on the same training/validation split
(``--validation-size``, default 5,000 held out of the training images):

* λ fixed at each of :data:`FIXED` (λ = 1 is the paper's other row; the best of the grid is chosen on
  the **validation** FID, and its test FID reported: a selection that never sees the test set);
* the paper's rule as printed (c = 0.05) and at c = 0.0005 (the λ study's best faithful reading);
* ``pi`` (ControlVAE's PI controller) holding the KL at :data:`PI_KL` nats, about where ELBO_W at
  λ = 1 is after one epoch (44–57 nats at steps 500–1,000 on 10 MNIST seeds) before its KL climbs
  to 86 nats by the end: the paper's "overfitting of ELBO_W", held back at a set point;
* ``geco`` (GECO's Lagrange multiplier) with the bound κ = :data:`GECO_KAPPA` nats, ELBO_KL's test
  reconstruction on MNIST (78.4, 10 seeds): as good a reconstruction as the standard VAE, with as
  strong a W2 penalty as that allows; λ kept ≥ 0.01 so the multiplicative update can recover after
  the first steps push it down.

Each arm reports n, mean, sd and a 95 % interval of the test FID (CNN features, as Table 1), the
validation FID, the collapsed fraction (test KL < 1 nat) with its Wilson interval, the final λ, and
its compute in replica-steps; each automatic arm is tested one-sided against λ = 1 fixed and against
the best fixed λ (Welch's t and Mann–Whitney U, :func:`jaxwvae.reports.stats.compare`).
"""

from __future__ import annotations

import functools
import pathlib

import numpy as np

from jaxwvae.config import paper_mnist
from jaxwvae.engine.plan import load_split
from jaxwvae.engine.results import MIN_KL
from jaxwvae.evaluation.replica_fid import FID_SAMPLES, FidScorer, ValidationFidScorer
from jaxwvae.reports import cells, plots, stats
from jaxwvae.reports.shared import TESTS_NOTE
from jaxwvae.runs import rundir

FIXED = ("0.25", "0.5", "1", "2", "4", "8")
PI_KL = 50.0
GECO_KAPPA = 78.4
VALIDATION_SIZE = 5_000
# name -> (label, grid point)
ARMS = {
    **{f"fixed{v}": (f"λ = {v} fixed", {"lambda_rule": "fixed", "lam": v}) for v in FIXED},
    "paper": ("paper's rule (c = 0.05)", {"lambda_rule": "arima", "lam": "1", "lambda_c": 0.05}),
    "paper_slow": ("paper's rule, c = 0.0005", {"lambda_rule": "arima", "lam": "1", "lambda_c": 0.0005}),
    "pi": (f"pi: KL → {PI_KL:g} nats", {"lambda_rule": "pi", "lam": "1", "pi_target": PI_KL}),
    "geco": (f"geco: rec ≤ {GECO_KAPPA:g} nats",
             {"lambda_rule": "geco", "lam": "1", "geco_kappa": GECO_KAPPA, "lambda_min": 0.01}),
}
AUTOMATIC = ("paper", "paper_slow", "pi", "geco")


GROUPS = ("w", "pbt", "fair")
DEFAULT_LAM = {"w": 1.0, "kl": 1.0, "wae": 10.0}  # the objectives' own weights (core.objectives)


def _fields(common: dict) -> dict:
    return {"validation_size": VALIDATION_SIZE, "pi_quantity": "kl",
            **{k: v for k, v in common.items() if k not in ("dataset", "objective", "grid")}}


def w_config(common: dict):
    """ELBO_W with every arm a grid point; ``common``'s fields (seeds, epochs, data, validation_size) on top."""
    points = tuple(tuple(point.items()) for _, point in ARMS.values())
    return paper_mnist(objective="w", grid=points, **_fields(common)).resolved()


def weights(objective: str) -> tuple[str, ...]:
    """The fixed grid :data:`FIXED` scaled to the objective's default weight (WAE-MMD: 2.5 … 80)."""
    return tuple(f"{float(v) * DEFAULT_LAM[objective]:g}" for v in FIXED)


def grid_config(objective: str, common: dict, *, pbt_fitness: str | None = None):
    """``objective`` over its scaled fixed grid; with ``pbt_fitness``, PBT over it, one round per epoch."""
    fields = _fields(common)
    points = tuple((("lambda_rule", "fixed"), ("lam", v)) for v in weights(objective))
    config = paper_mnist(objective=objective, grid=points, **fields).resolved()
    if pbt_fitness is None:
        return config
    n_train = (config.train_size or 60_000 - config.validation_size)
    per_epoch = n_train // config.batch_size
    return paper_mnist(objective=objective, grid=points, pbt_every=per_epoch, pbt_fitness=pbt_fitness,
                       **fields).resolved()


def _arm(label: str, cell, idx: list[int], test_fid, validation_fid, steps: int) -> dict:
    runs = [cell.runs[r] for r in idx]
    return {"label": label, "n": len(idx),
            "test_fid": stats.summary([test_fid[r] for r in idx]),
            "validation_fid": stats.summary([validation_fid[r] for r in idx]),
            "collapsed": stats.proportion(sum(r["kl"] < MIN_KL for r in runs), len(runs)),
            "lam_final": stats.summary([r["lam_final"] for r in runs]),
            "kl": stats.summary([r["kl"] for r in runs]), "rec": stats.summary([r["rec"] for r in runs]),
            "replica_steps": len(idx) * steps,
            "test_fid_per_seed": {str(r["seed"]): test_fid[j] for r, j in zip(runs, idx)}}


def _test(a: dict, b: dict, **keys) -> dict:
    """One-sided "a's test FID < b's" on the per-seed FIDs."""
    return {**keys, "claim": f"{a['label']} < {b['label']}",
            **stats.compare(list(a["test_fid_per_seed"].values()), list(b["test_fid_per_seed"].values()),
                            alternative="less")}


def _best(arms: dict, names) -> str | None:
    finite = [a for a in names if arms[a]["validation_fid"]["mean"] is not None]
    return min(finite, key=lambda a: arms[a]["validation_fid"]["mean"]) if finite else None


class _Scorers:
    """The FID scorers a study's cells share: test FID, validation FID, and PBT's fid fitness."""

    def __init__(self, config, fid_samples: int, feature_recipe):
        self.config, self.recipe = config, feature_recipe
        self.test = FidScorer("mnist", config.data_dir, None, feature_recipe, fid_samples)
        self.validation = ValidationFidScorer("mnist", config.data_dir, config.validation_size, self.validation_u8,
                                              feature_recipe)

    @functools.cache  # noqa: B019 (one instance per study run)
    def validation_u8(self):
        """The validation images, loaded when a FID or a fitness first needs them (never for summaries)."""
        return load_split(self.config, "validation")

    def fitness(self, config):
        """The ``fid`` fitness of a PBT sweep, built only when the sweep is trained here."""
        from jaxwvae.evaluation import fid_fitness

        if config.pbt_fitness != "fid":
            return None
        built = []

        def fitness(params, seeds):
            if not built:  # the feature CNN and the validation statistics, once, at the first round
                built.append(fid_fitness.for_run(config, self.validation_u8(), self.recipe))
            return built[0](params, seeds)

        return fitness


def run(out, common: dict, *, fid_samples: int = FID_SAMPLES, feature_recipe: dict | None = None, pool=(),
        progress: bool = True, groups=GROUPS) -> dict:
    """Run (or read, or resume) the study's sweeps under ``out``; write ``autolambda.json``/``.md``, pictures.

    ``groups``: ``w`` (ELBO_W's arms, one sweep), ``pbt`` (PBT over ELBO_W's λ with the ``fid`` and the
    ``elbo`` fitness, two sweeps), ``fair`` (ELBO_KL and WAE-MMD at their default weight, the best fixed
    weight of the same grid scaled to it, and under PBT with the ``fid`` fitness: four sweeps).
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = w_config(common)
    scorers = _Scorers(config, fid_samples, feature_recipe)

    def sweep_cell(name, c):
        return cells.cell(c, out / name, [pathlib.Path(p) / name for p in pool], progress=progress,
                          fitness_fn=scorers.fitness(c))

    def scored(c):
        return c.fids(scorers.test), c.fids(scorers.validation), c.summaries[0]["timing"]["steps"]

    cell = sweep_cell("mnist_w_arms", config)
    test_fid, validation_fid, steps = scored(cell)
    n = len(cell.seeds)

    def members(i: int) -> list[int]:
        return list(range(i * n, (i + 1) * n))

    arms = {name: {**_arm(label, cell, members(i), test_fid, validation_fid, steps), "point": point}
            for i, (name, (label, point)) in enumerate(ARMS.items())}
    best = _best(arms, [f"fixed{v}" for v in FIXED])
    tests = [_test(arms[name], arms[ref], arm=name, reference=ref)
             for name in AUTOMATIC for ref in dict.fromkeys(["fixed1", best]) if ref is not None]
    schedules = {}
    if "pbt" in groups:
        for fitness in ("fid", "elbo"):
            c = sweep_cell(f"mnist_w_pbt_{fitness}", grid_config("w", common, pbt_fitness=fitness))
            t, v, s = scored(c)
            winners = c.pbt_winners()
            name = f"pbt_{fitness}"
            arms[name] = {**_arm(f"PBT over λ, {fitness} fitness", c, [w["replica"] for w in winners], t, v, s),
                          "replica_steps": len(c.runs) * s, "point": {"pbt_fitness": fitness}}
            schedules[name] = {"steps": winners[0]["schedule"]["steps"] if winners else [],
                               "lam": [w["schedule"]["lam"] for w in winners]}
            tests += [_test(arms[name], arms[ref], arm=name, reference=ref)
                      for ref in dict.fromkeys(["fixed1", best]) if ref is not None]
    fair = {}
    if "fair" in groups:
        w_best = {"default": arms["fixed1"], "best fixed": arms[best] if best else None,
                  "PBT": arms.get("pbt_fid")}
        for objective in ("kl", "wae"):
            c = sweep_cell(f"mnist_{objective}_grid", grid_config(objective, common))
            t, v, s = scored(c)
            m = len(c.seeds)
            label = {"kl": "ELBO_KL", "wae": "WAE-MMD"}[objective]
            grid_arms = {lam: _arm(f"{label}, λ = {lam}", c, list(range(i * m, (i + 1) * m)), t, v, s)
                         for i, lam in enumerate(weights(objective))}
            chosen = _best(grid_arms, list(grid_arms))
            pbt = sweep_cell(f"mnist_{objective}_pbt_fid", grid_config(objective, common, pbt_fitness="fid"))
            t2, v2, s2 = scored(pbt)
            winners = pbt.pbt_winners()
            rows = {"default": grid_arms[weights(objective)[FIXED.index("1")]],
                    "best fixed": grid_arms[chosen] if chosen else None,
                    "PBT": {**_arm(f"{label}, PBT (fid fitness)", pbt, [w["replica"] for w in winners], t2, v2, s2),
                            "replica_steps": len(pbt.runs) * s2}}
            fair[objective] = {"grid": grid_arms, "best": chosen, "rows": rows,
                               "tests": [_test(w_best[k], row, setting=k) for k, row in rows.items()
                                         if row is not None and w_best[k] is not None]}
    report = {"dataset": "mnist", "seeds": list(cell.seeds), "epochs": config.epochs,
              "validation_size": config.validation_size, "fid_samples": fid_samples,
              "features": scorers.test.name, "device": cell.device,
              "train_s": cell.train_s, "arms": arms, "best_fixed": best, "tests": tests,
              "pbt_schedules": schedules, "fair": fair, "runs": [str(f) for f in cell.folders]}
    history = cell.history()
    report["pictures"] = history is not None
    rundir.write_json(out / "autolambda.json", report)
    rundir.atomic_write_bytes(out / "autolambda.md", markdown(report).encode())
    if history is not None:
        write_pictures(out, report, history, members)
    return report


def markdown(report: dict) -> str:
    arms = report["arms"]
    lines = [f"ELBO_W on MNIST, {report['epochs']} epochs, {len(report['seeds'])} seeds per arm, "
             f"{report['validation_size']} training images held out for validation; FID of "
             f"{report['fid_samples']} prior samples on the CNN features ({report['features']}): mean (sd) "
             "[95 % interval] n. Collapsed: test KL < 1 nat, Wilson 95 % interval. Compute in replica-steps.", "",
             "| arm | test FID | validation FID | collapsed | final λ | test KL | test rec. | compute |",
             "|---|---|---|---|---|---|---|---|"]
    for name, a in arms.items():
        mark = " **(best fixed, on validation)**" if name == report["best_fixed"] else ""
        lines.append(f"| {a['label']}{mark} | {stats.format_summary(a['test_fid'])} | "
                     f"{stats.format_summary(a['validation_fid'])} | {stats.format_proportion(a['collapsed'])} | "
                     f"{stats.format_summary(a['lam_final'], 3)} | {stats.format_summary(a['kl'])} | "
                     f"{stats.format_summary(a['rec'])} | {a['replica_steps']:,} |")
    lines += ["", "Each automatic λ against λ = 1 fixed and the best fixed λ, test FID, one-sided "
              "(small p: the automatic arm's FID is lower). " + TESTS_NOTE, "",
              "| claim | n | Welch's t | Mann–Whitney U |", "|---|---|---|---|"]
    for t in report["tests"]:
        lines.append(f"| {t['claim']} | {t['n_a']}, {t['n_b']} | {stats.format_test(t['welch'])} | "
                     f"{stats.format_test(t['mann_whitney'])} |")
    if report.get("fair"):
        lines += ["", "Table 1 with every objective's weight tuned alike: test FID at the default weight, at the "
                  "best fixed weight of the same grid scaled to the default (chosen on validation FID), and "
                  "under PBT (fid fitness); ELBO_W's arm of the same setting tested one-sided against each.", "",
                  "| objective | setting | test FID | collapsed | compute | ELBO_W < it: Welch p, MWU p |",
                  "|---|---|---|---|---|---|"]
        for objective, f in report["fair"].items():
            tests = {t["setting"]: t for t in f["tests"]}
            for setting, row in f["rows"].items():
                if row is None:
                    continue
                test = stats.format_comparison(tests[setting]) if setting in tests else "–"
                lines.append(f"| {objective} | {row['label']} ({setting}) | {stats.format_summary(row['test_fid'])} | "
                             f"{stats.format_proportion(row['collapsed'])} | {row['replica_steps']:,} | {test} |")
    return "\n".join(lines) + "\n"


def write_pictures(out: pathlib.Path, report: dict, history: dict, members) -> None:
    """``autolambda_lambda.png`` (median λ of each arm against the step) and ``autolambda_fid.png``."""
    plt = plots._pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for i, name in enumerate(ARMS):  # the grid points of the arms' sweep, whose history this is
        if name.startswith("fixed") and name != "fixed1":
            continue
        ax.plot(np.nanmedian(history["lam"][members(i)], axis=0), label=report["arms"][name]["label"], linewidth=1.2)
    for name, schedule in report.get("pbt_schedules", {}).items():
        if schedule["lam"]:
            ax.step(schedule["steps"], np.nanmedian(np.asarray(schedule["lam"], float), axis=0), where="post",
                    label=f"{report['arms'][name]['label']} (winners' inherited λ)", linewidth=1.2)
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set(xlabel="training step", ylabel="λ (median over seeds)", title="λ of each automatic rule, and λ = 1")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    plots._save(fig, out / "autolambda_lambda.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.2))
    names = list(report["arms"])
    for x, name in enumerate(names):
        s = report["arms"][name]["test_fid"]
        if s["mean"] is None:
            continue
        low, high = (s["ci_low"], s["ci_high"]) if s["ci_low"] is not None else (s["mean"], s["mean"])
        ax.errorbar([x], [s["mean"]], yerr=[[s["mean"] - low], [high - s["mean"]]], fmt="o", capsize=3)
    ax.set_xticks(range(len(names)), [report["arms"][n]["label"] for n in names], rotation=35, ha="right",
                  fontsize=7)
    ax.set_yscale("log")
    ax.set(ylabel="test FID (mean, 95 % interval)", title="FID per arm (CNN features)")
    fig.tight_layout()
    plots._save(fig, out / "autolambda_fid.png")
    plt.close(fig)
