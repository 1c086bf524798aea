"""Everything README reports for an accelerator, in one command and one JSON file.

    python accelerator.py --data-dir ../../shared/data            # on a GPU: about 8 minutes (--budget-s)
    python accelerator.py --quick --data-dir ../../shared/data    # a tiny smoke run (the test suite's, on CPU)
    python report.py results/accelerator-gpu-*.json                # README's speed tables from it

The sections run in this order, each with a share of the time budget (what one section leaves
goes on to the next), its own wall time and, for whatever it did not measure, the reason:

scaling       ``scaling.measure`` per seed count (default 1, 10, 30, 100, 300, 1000): ms per sweep
              step, µs per seed-step, XLA's FLOPs and bytes of a step, compile time, XLA's bytes of
              the compiled chunk and the device's peak bytes in use; it stops at the first seed
              count that does not fit in device memory, or that would overrun the section's budget
              (its compile time plus its running time scaled linearly from the last row), and says
              which. Then the 15-epoch (9,000-step) training time of 30 and of 1,000 seeds,
              EXTRAPOLATED from their measured ms per sweep step (compile, evaluation and
              checkpoints not included), and what a large matmul attains here.
peers         ``peers.measure``: (a)-(e') at 30 seeds ((a) extrapolated, see peers.py); on a single
              CPU device (e) with both replica loops. PyTorch peers are skipped, with the reason,
              where torch is missing.
lambda_rules  ``lambda_speed.measure``: fixed, device, host and statsmodels λ rules end to end.
lean_step     ``lean_step.measure``: the library's step against a bare vmapped one (bytes, FLOPs, time).
pbt           ``pbt_round.measure``: one PBT round, the ``elbo`` and the ``fid`` fitness on the validation
              images, and a chunk of training, at 30 populations x 8 members; each as a share of an
              epoch (an epoch EXTRAPOLATED from the chunk, as pbt_round.py does).
memory        XLA's bytes of the compiled chunk per seed count (``Program.bytes_per_device``), the
              device's peak bytes in use and limit (None on the CPU, which reports none), and the
              seed count where the compiled bytes, linear in the seeds, would reach the limit
              (EXTRAPOLATED).

Every measurement records the replica loop it ran with (``SweepConfig.replica_loop``). The JSON is
strict (a NaN is written as null): ``{"machine", "date", "jax", "backend", "devices", "quick",
"budget_s", "wall_s", "settings", "sections": {name: {..., "wall_s", "budget_s"}}}``; a section
that did not run has ``"skipped"`` (why), one that failed ``"error"`` (and the exit status is 1).
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # before NumPy loads: statsmodels' fits on one OpenBLAS thread, as peers.py
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import common  # noqa: E402
import jax  # noqa: E402
import lambda_speed  # noqa: E402
import lean_step  # noqa: E402
import pbt_round  # noqa: E402
import peers  # noqa: E402
import scaling  # noqa: E402

from jaxwvae import config as config_lib  # noqa: E402
from jaxwvae.devices.distributed import describe_devices  # noqa: E402
from jaxwvae.engine.plan import load_split  # noqa: E402
from jaxwvae.runs import rundir

PAPER_STEPS = 15 * 600  # 15 MNIST epochs of 600 batches of 100
EXTRAPOLATED_SEEDS = (30, 1000)
EXTRAPOLATED_LABEL = ("EXTRAPOLATED from the measured ms per sweep step x 9,000 steps (15 MNIST epochs of 600 "
                      "batches); compile, evaluation and checkpoints not included")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The sizes of every section; :data:`FULL` is README's, :data:`QUICK` a smoke run."""

    seeds_list: tuple[int, ...] = (1, 10, 30, 100, 300, 1000)
    steps: int = 50  # steps per timed block (scaling, peers)
    repeats: int = 3
    train_size: int | None = None  # None: all 60,000 MNIST training images
    peer_seeds: int = 30
    paper_steps: int = 30  # timed steps per seed of peer (a)
    lambda_seeds: int = 30
    lambda_steps: int = 200
    refit_every: int = 50
    lambda_test_size: int = 1000
    lambda_workers: int | None = None  # statsmodels processes; None: one per core
    fit_repeats: int = 5
    lean_seeds: int = 30
    lean_steps: int = 20
    lean_repeats: int = 5
    matmul_n: int = 2048
    pbt_populations: int = 30
    pbt_members: int = 8
    pbt_chunk: int = 10  # training steps per timed call, and between rounds
    pbt_validation_size: int = 1000  # the fitness's images (and the fid's samples per replica)
    pbt_repeats: int = 3
    pbt_feature_recipe: tuple = ()  # the fid's feature CNN, as (name, value) pairs; (): Table 1's
    torch_threads: int | None = None  # torch.set_num_threads for the PyTorch peers; None: torch's default
    hidden: tuple[int, ...] = (512, 256)  # the paper's model
    latent_dim: int = 20

    @property
    def model(self) -> dict:
        return {"hidden": self.hidden, "latent_dim": self.latent_dim}


FULL = Settings()
QUICK = Settings(seeds_list=(1, 2), steps=2, repeats=1, train_size=200, peer_seeds=2, paper_steps=2,
                 lambda_seeds=2, lambda_steps=4, refit_every=2, lambda_test_size=400, lambda_workers=1,
                 fit_repeats=1, lean_seeds=2, lean_steps=2, lean_repeats=1, matmul_n=256, torch_threads=1,
                 pbt_populations=2, pbt_members=2, pbt_chunk=2, pbt_validation_size=500, pbt_repeats=1,
                 pbt_feature_recipe=(("train_size", 1000), ("epochs", 1)), hidden=(32,), latent_dim=4)
# Quick: a smaller model, which compiles faster. λ rules: 4 steps, so that statsmodels (warm-up: 3
# values for ARIMA(1, 1, 0)) fits at least once; a test split as large as the 400 training images, so
# both evaluations compile one program; one statsmodels process (each starts by importing statsmodels)
# and one torch thread: little CPU taken from whatever else runs. PBT: the fid fitness's minimum of 500
# validation images, and a feature CNN of one epoch on 1,000 images.

# Each section's share of the budget: what one leaves goes on to the next.
WEIGHTS = {"scaling": 0.40, "peers": 0.25, "lambda_rules": 0.20, "lean_step": 0.12, "pbt": 0.08, "memory": 0.03}


def out_of_memory(error: Exception) -> bool:
    """Whether ``error`` is XLA's (or the allocator's) out-of-memory error."""
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def extrapolated_runs(rows: list[dict]) -> list[dict]:
    """The 9,000-step training time of each of :data:`EXTRAPOLATED_SEEDS` from its measured step time."""
    out = []
    for seeds in EXTRAPOLATED_SEEDS:
        row = next((r for r in rows if r["seeds"] == seeds), None)
        if row is None:
            measured = ", ".join(str(r["seeds"]) for r in rows) or "none"
            out.append({"seeds": seeds, "steps": PAPER_STEPS, "seconds": None,
                        "reason": f"not among the measured seed counts ({measured})"})
        else:
            out.append({"seeds": seeds, "steps": PAPER_STEPS, "seconds": row["ms_per_step"] * PAPER_STEPS / 1e3,
                        "from_ms_per_step": row["ms_per_step"], "replica_loop": row["replica_loop"],
                        "extrapolated": True})
    return out


def run_scaling(settings: Settings, data_dir, deadline: float, log) -> dict:
    base = config_lib.paper_mnist(data_dir=data_dir, train_size=settings.train_size).resolved()
    images_np = load_split(base, "train")
    rows, stopped = [], None
    for seeds in settings.seeds_list:
        left = deadline - time.perf_counter()
        if rows:
            last = rows[-1]
            predicted = last["compile_s"] + last["run_s"] * seeds / last["seeds"]
            if predicted > left:
                stopped = (f"time budget: {seeds} seeds would take about {predicted:.0f} s (the compile time of "
                           f"{last['seeds']} seeds plus its running time scaled linearly), {max(left, 0):.0f} s "
                           f"of the section's budget were left")
                break
        try:
            row = scaling.measure(seeds, images_np, steps=settings.steps, repeats=settings.repeats,
                                  data_dir=data_dir, train_size=settings.train_size, **settings.model)
        except scaling.DoesNotFit as error:
            stopped = f"device memory: {error}"
            break
        except Exception as error:  # noqa: BLE001 - only an allocation failure ends the list quietly
            if not out_of_memory(error):
                raise
            stopped = f"device memory: {seeds} seeds failed to allocate ({first_line(error)})"
            break
        finally:
            gc.collect()  # the previous program's states, before the next (larger) one allocates
        rows.append(row)
        log(f"  scaling: {seeds} seeds, {row['ms_per_step']:.3f} ms per sweep step "
            f"({row['replica_loop']}, compile {row['compile_s']:.1f} s)")
    return {"seeds_requested": list(settings.seeds_list), "rows": rows,
            "largest_measured_seeds": rows[-1]["seeds"] if rows else None,
            "stopped": stopped, "complete": stopped is None,
            "matmul_n": settings.matmul_n, "matmul_gflops": scaling.matmul_gflops(settings.matmul_n),
            "extrapolated_15_epochs": extrapolated_runs(rows), "extrapolated_label": EXTRAPOLATED_LABEL}


def run_peers(settings: Settings, data_dir, deadline: float, log) -> dict:
    if settings.torch_threads is not None and peers.torch is not None:
        peers.torch.set_num_threads(settings.torch_threads)
    return peers.measure(seeds=settings.peer_seeds, steps=settings.steps, repeats=settings.repeats,
                         paper_steps=settings.paper_steps, data_dir=data_dir, train_size=settings.train_size,
                         deadline=deadline, log=log, **settings.model)


def run_lambda_rules(settings: Settings, data_dir, deadline: float, log) -> dict:
    return lambda_speed.measure(seeds=settings.lambda_seeds, steps=settings.lambda_steps,
                                refit_every=settings.refit_every, workers=settings.lambda_workers,
                                data_dir=data_dir,
                                test_size=settings.lambda_test_size, fit_repeats=settings.fit_repeats,
                                deadline=deadline, log=log, **settings.model)


def run_lean_step(settings: Settings, data_dir, deadline: float, log) -> dict:
    out = lean_step.measure(seeds=settings.lean_seeds, steps=settings.lean_steps, repeats=settings.lean_repeats,
                            data_dir=data_dir, train_size=settings.train_size, **settings.model)
    log(f"  lean step: library / bare bytes {out['ratio_bytes']:.3f}x, FLOPs {out['ratio_flops']:.3f}x, "
        f"time {out['ratio_time']:.3f}x")
    return out


def run_pbt(settings: Settings, data_dir, deadline: float, log) -> dict:
    out = pbt_round.measure(populations=settings.pbt_populations, members=settings.pbt_members,
                            chunk=settings.pbt_chunk, validation_size=settings.pbt_validation_size,
                            repeats=settings.pbt_repeats, data_dir=data_dir, fid=True,
                            feature_recipe=dict(settings.pbt_feature_recipe) or None,
                            train_size=settings.train_size, **settings.model)
    ms = out["ms"]
    log(f"  pbt: {out['replicas']} replicas, round {ms['round']:.1f} ms, elbo fitness {ms['elbo_fitness']:.1f} ms, "
        f"fid fitness {ms['fid_fitness']:.1f} ms, epoch {ms['epoch'] / 1e3:.1f} s (extrapolated)")
    return {**out, "epoch_extrapolated": True}


def run_memory(scaling_section: dict) -> dict:
    """Memory per seed count from the scaling rows, and the device's own figures now (after every section)."""
    rows = [{"seeds": r["seeds"], "replica_loop": r["replica_loop"], "compiled_bytes": r["compiled_bytes"],
             "peak_bytes_in_use": r["peak_bytes_in_use"]} for r in scaling_section.get("rows", [])]
    stats = jax.local_devices()[0].memory_stats()
    out = {"rows": rows, "source": "compiled_bytes: XLA's memory analysis of the compiled chunk (arguments + "
           "temporaries + outputs - aliased); peak_bytes_in_use: the device allocator's peak so far, "
           "cumulative over the run (seed counts ascend)"}
    if not rows:
        out["rows_reason"] = "the scaling section measured no seed count: " + str(
            scaling_section.get("skipped") or scaling_section.get("error") or scaling_section.get("stopped"))
    if stats is None:
        out.update(bytes_limit=None, peak_bytes_in_use=None,
                   device_reason=f"the {jax.devices()[0].platform} backend reports no memory statistics "
                                 "(memory_stats() is None)")
    else:
        out.update(bytes_limit=stats.get("bytes_limit"), peak_bytes_in_use=stats.get("peak_bytes_in_use"))
    usable = [r for r in rows if r["compiled_bytes"] is not None]
    if len(usable) >= 2 and out["bytes_limit"] is not None:
        a, b = usable[-2], usable[-1]
        slope = (b["compiled_bytes"] - a["compiled_bytes"]) / (b["seeds"] - a["seeds"])
        fit = None if slope <= 0 else int(b["seeds"] + (out["bytes_limit"] - b["compiled_bytes"]) // slope)
        out["fitting_seeds_extrapolated"] = {
            "seeds": fit, "bytes_per_seed": slope,
            "label": f"EXTRAPOLATED: compiled bytes linear in the seeds through {a['seeds']} and {b['seeds']} "
                     f"seeds, up to the device's limit"}
    else:
        out["fitting_seeds_extrapolated"] = {
            "seeds": None, "reason": "needs a device memory limit and two measured seed counts"}
    return out


SECTIONS = {"scaling": run_scaling, "peers": run_peers, "lambda_rules": run_lambda_rules,
            "lean_step": run_lean_step, "pbt": run_pbt, "memory": None}


def run_all(settings: Settings, *, budget_s: float, data_dir=None, only=tuple(SECTIONS), log=print) -> dict:
    """Every requested section within ``budget_s``; the ``sections`` dict of the JSON."""
    start = time.perf_counter()
    sections = {}
    weight_left = sum(WEIGHTS.values())
    for name, fn in SECTIONS.items():
        left = budget_s - (time.perf_counter() - start)
        share = max(left, 0.0) * WEIGHTS[name] / weight_left
        weight_left -= WEIGHTS[name]
        begun = time.perf_counter()
        if name not in only:
            section = {"skipped": "not requested (--sections)"}
        elif left <= 0:
            section = {"skipped": f"the global time budget of {budget_s:.0f} s was spent before this section"}
        else:
            log(f"{name} (budget {share:.0f} s)")
            try:
                if fn is None:
                    section = run_memory(sections.get("scaling", {}))
                else:
                    section = fn(settings, data_dir, begun + share, log)
            except Exception as error:  # noqa: BLE001 - one failed section must not lose the others
                traceback.print_exc()
                section = {"error": first_line(error)}
        section.update(wall_s=time.perf_counter() - begun, budget_s=share)
        sections[name] = section
        gc.collect()
    return sections


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every section")
    parser.add_argument("--budget-s", type=float, default=480.0, help="time budget for all sections (s)")
    parser.add_argument("--seeds-list", default=None, help="scaling's seed counts, e.g. 1,10,30")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="the sections to run (comma-separated)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=None,
                        help="the JSON file (default: results/accelerator-<platform>-<date>.json beside this script)")
    args = parser.parse_args(argv)
    only = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"--sections: unknown {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    settings = QUICK if args.quick else FULL
    if args.seeds_list:
        settings = dataclasses.replace(settings, seeds_list=tuple(int(s) for s in args.seeds_list.split(",")))

    now = datetime.datetime.now(datetime.timezone.utc)
    platform = jax.devices()[0].platform
    out = pathlib.Path(args.out) if args.out else (
        pathlib.Path(__file__).resolve().parent / "results" / f"accelerator-{platform}-{now.date().isoformat()}.json")
    start = time.perf_counter()
    print(f"machine: {common.machine()}; {describe_devices()}", flush=True)
    sections = run_all(settings, budget_s=args.budget_s, data_dir=args.data_dir, only=only,
                       log=lambda line: print(line, flush=True))
    record = {"machine": common.machine(), "date": now.isoformat(timespec="seconds"), "jax": jax.__version__,
              "backend": jax.default_backend(), "devices": describe_devices(), "quick": args.quick,
              "budget_s": args.budget_s, "wall_s": time.perf_counter() - start,
              "jax_disable_most_optimizations": bool(jax.config.read("jax_disable_most_optimizations")),
              "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "command": sys.argv,
              "settings": dataclasses.asdict(settings), "sections": sections}
    out.parent.mkdir(parents=True, exist_ok=True)
    rundir.write_json(out, record)  # strict JSON: a NaN (a failed timing) is written as null
    failed = [name for name, s in sections.items() if "error" in s]
    print(f"wrote {out} ({record['wall_s']:.0f} s)" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
