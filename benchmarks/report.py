"""The speed tables of docs/speed.md, rendered from the JSON files ``accelerator.py`` writes: no figure copied by hand.

    python report.py results/accelerator-gpu-2026-12-01.json results/accelerator-cpu-2026-12-01.json
    python report.py results/*.json --out tables.md

One markdown section per table (scaling, peers, λ rules, lean step, PBT, memory); under it one table
per JSON file, headed by the machine and date it was measured on. Every ratio is computed here
from numbers of the same file (the same run); a value the run did not measure shows
"not measured", with the run's reason where it gave one. Reads JSON only: no JAX, no device.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys

PAPER_STEPS = 15 * 600
MISSING = "not measured"
PEER_ORDER = ("a", "b", "c", "d", "e", "e_vmap", "e_map", "e'")


def load(path) -> dict:
    """One ``accelerator.py`` JSON file (strict: a NaN or Infinity in it is an error)."""
    def refuse(name):
        raise ValueError(f"{path}: {name} is not strict JSON")

    return json.loads(pathlib.Path(path).read_text(), parse_constant=refuse)


def measured(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def num(v, digits: int | None = None) -> str:
    """``v`` for a table: ``digits`` decimals, or by size (1,234 / 12.3 / 1.23); missing: "not measured"."""
    if not measured(v):
        return MISSING
    if digits is None:
        digits = 0 if abs(v) >= 100 else 1 if abs(v) >= 10 else 2 if abs(v) >= 0.1 else 4
    return f"{v:,.{digits}f}"


def ratio(a, b) -> str:
    """``a / b`` to two decimals, or "not measured" when either is missing."""
    return num(a / b, 2) if measured(a) and measured(b) and b != 0 else MISSING


def mib(v) -> str:
    return num(v / 2**20, 0) if measured(v) else MISSING


def model_text(s: dict) -> str:
    """The MLP VAE a section trained, e.g. ``784-512-256-2x20``; the paper's when the section does not say."""
    hidden, latent = s.get("hidden", [512, 256]), s.get("latent_dim", 20)
    return "model " + "-".join(str(n) for n in (784, *hidden)) + f"-2x{latent}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def heading(data: dict, path) -> str:
    quick = "; a --quick smoke run, not a measurement to report" if data.get("quick") else ""
    return (f"Measured on {data.get('machine', 'an unnamed machine')}, {str(data.get('date', 'undated'))[:10]} "
            f"(backend {data.get('backend')}; `{pathlib.Path(path).name}`{quick}).")


def not_run(section: dict | None) -> str | None:
    """Why a section has no figures, or None when it has them."""
    if section is None:
        return f"{MISSING}: this file has no such section"
    if "skipped" in section:
        return f"{MISSING}: {section['skipped']}"
    if "error" in section:
        return f"{MISSING}: the section failed ({section['error']})"
    return None


def scaling_table(s: dict) -> list[str]:
    rows = [[str(r["seeds"]), r.get("replica_loop", MISSING), num(r.get("ms_per_step")),
             num(r.get("us_per_seed_step")), num(r.get("gflop_per_step")), num(r.get("gflops"), 0),
             num(r.get("gb_per_s")), num(r.get("compile_s"), 1), num(r.get("paper_run_s"), 0)]
            for r in s.get("rows", [])]
    done = {r["seeds"] for r in s.get("rows", [])}
    rows += [[str(n), MISSING] + [MISSING] * 7 for n in s.get("seeds_requested", []) if n not in done]
    lines = table(["seeds", "replica loop", "ms per sweep step", "µs per seed-step", "GFLOP per step",
                   "GFLOP/s", "GB/s", "compile (s)", "15 epochs (s, extrapolated)"], rows)
    lines.append("")
    lines.append("Stopped: " + s["stopped"] + "." if s.get("stopped") else "Every requested seed count ran.")
    lines.append(f"{model_text((s.get('rows') or [{}])[0])}, batch 100. FLOPs and bytes per step: XLA's cost "
                 f"analysis of one vmapped step. A {s.get('matmul_n', '?')} x "
                 f"{s.get('matmul_n', '?')} float32 matmul attains {num(s.get('matmul_gflops'), 0)} GFLOP/s here.")
    for run in s.get("extrapolated_15_epochs", []):
        if measured(run.get("seconds")):
            lines.append(f"15 epochs (9,000 steps) of {run['seeds']} seeds: {num(run['seconds'], 0)} s "
                         f"({num(run['seconds'] / 60, 1)} min), {s.get('extrapolated_label', 'extrapolated')}.")
        else:
            lines.append(f"15 epochs of {run['seeds']} seeds: {MISSING}: {run.get('reason', 'no reason given')}.")
    return lines


def peers_table(s: dict) -> list[str]:
    ms, loops, labels, skipped = (s.get(k, {}) for k in ("ms_per_step", "replica_loop", "labels", "not_measured"))
    rows = []
    for name in PEER_ORDER:
        if name not in ms and name not in skipped:
            continue
        v = ms.get(name)
        cell = num(v) + (" (extrapolated)" if name == "a" and measured(v) else "")
        if not measured(v):
            cell = f"{MISSING} ({skipped.get(name, 'no reason given')})"
        rows.append([f"({name})", labels.get(name, ""), loops.get(name, MISSING), cell,
                     num(v * PAPER_STEPS / 1e3, 0) if measured(v) else MISSING,
                     ratio(v, ms.get("e")), ratio(v, ms.get("d"))])
    lines = table(["peer", "what", "replica loop", "ms per sweep step", "s per 15 epochs", "× (e)", "× (d)"], rows)
    lines.append("")
    torch = (f"PyTorch {s['torch']} on {s.get('torch_device')}, {s.get('torch_threads')} threads" if "torch" in s
             else "PyTorch not installed")
    lines.append(f"{s.get('seeds', '?')} seeds, {model_text(s)}, batch {s.get('batch_size', '?')}, median of "
                 f"{s.get('repeats', '?')} blocks of {s.get('steps', '?')} steps; {torch}; "
                 f"OPENBLAS_NUM_THREADS={s.get('openblas_threads')}.")
    paper, adaptive = s.get("paper"), ms.get("e'")
    if paper:
        lines.append(f"(a) is EXTRAPOLATED to a 9,000-step run: measured {num(paper.get('measured_ms_per_step'))} ms "
                     f"per sweep step at histories of {paper.get('history_from')}-{paper.get('history_to')} values, "
                     f"statsmodels fits {num(paper.get('fit_ms_at_mean_history'))} ms there and "
                     f"{num(paper.get('fit_ms_at_9000'))} ms at 9,000 values (see peers.py). "
                     f"(a) / (e'): {ratio(ms.get('a'), adaptive)}.")
    return lines


def lambda_table(s: dict) -> list[str]:
    ms, loops, skipped = (s.get(k, {}) for k in ("ms_per_step", "replica_loop", "not_measured"))
    rows = []
    for name in [*ms, *(k for k in skipped if k not in ms)]:
        v = ms.get(name)
        cell = num(v) if measured(v) else f"{MISSING} ({skipped.get(name, 'no reason given')})"
        rows.append([name, loops.get(name, MISSING), cell, ratio(v, ms.get("device")),
                     num(v * PAPER_STEPS / 1e3, 0) if measured(v) else MISSING])
    lines = table(["λ rule", "replica loop", "ms per sweep step", "× device", "s per 15 epochs"], rows)
    lines.append("")
    lines.append(f"{s.get('seeds', '?')} seeds, {model_text(s)}, batch {s.get('batch_size', '?')}, "
                 f"{s.get('steps', '?')} steps per run "
                 f"(training, metric fetches and the final checkpoint; no compile).")
    fits = s.get("fit_ms", {})
    if fits:
        lines.append("One statsmodels ARIMA fit + forecast: " +
                     ", ".join(f"{int(n):,} values {num(v)} ms" for n, v in fits.items()) +
                     f"; refit 1 over a 9,000-step run of {s.get('seeds', '?')} seeds on {s.get('workers', '?')} "
                     f"workers: {num(s.get('statsmodels_refit1_full_run_s_extrapolated'), 0)} s of fitting alone "
                     f"(EXTRAPOLATED from those fits).")
    return lines


def lean_table(s: dict) -> list[str]:
    ms = s.get("ms_per_step", {})
    rows = []
    for name in ("bare", "library"):
        c = s.get(name, {})
        rows.append([name, num(c.get("flops", math.nan) / 1e9), num(c.get("bytes", math.nan) / 1e9, 3),
                     num(ms.get(name))])
    lib, bare = s.get("library", {}), s.get("bare", {})
    rows.append(["library / bare", ratio(lib.get("flops"), bare.get("flops")),
                 ratio(lib.get("bytes"), bare.get("bytes")), ratio(ms.get("library"), ms.get("bare"))])
    lines = table(["step", "GFLOP per sweep step", "GB accessed per sweep step", "ms per sweep step"], rows)
    lines.append("")
    lines.append(f"{s.get('seeds', '?')} seeds, {model_text(s)}, replica loop {s.get('replica_loop', '?')}; "
                 f"FLOPs and bytes from XLA's "
                 f"cost analysis of one vmapped step, time the median of {s.get('repeats', '?')} chunks of "
                 f"{s.get('steps', '?')} steps.")
    return lines


def pbt_table(s: dict) -> list[str]:
    ms = s.get("ms", {})
    epoch = ms.get("epoch")

    def share(v):
        return num(100 * v / epoch, 2) if measured(v) and measured(epoch) else MISSING

    rows = [[name, num(ms.get(key)), share(ms.get(key))] for name, key in
            (("round (select, gather, perturb)", "round"), ("elbo fitness", "elbo_fitness"),
             ("fid fitness", "fid_fitness"))]
    rows.append([f"{s.get('chunk', '?')} training steps", num(ms.get("chunk")), share(ms.get("chunk"))])
    lines = table(["PBT", "ms", "% of an epoch"], rows)
    lines.append("")
    lines.append(f"{s.get('populations', '?')} populations x {s.get('members', '?')} members, {model_text(s)}, "
                 f"{s.get('validation_size', '?')} validation images (and fid samples per replica); an epoch of "
                 f"{s.get('steps_per_epoch', '?')} steps EXTRAPOLATED from the chunk: {num(epoch)} ms.")
    return lines


def memory_table(s: dict) -> list[str]:
    rows = [[str(r["seeds"]), r.get("replica_loop", MISSING), mib(r.get("compiled_bytes")),
             mib(r.get("peak_bytes_in_use"))] for r in s.get("rows", [])]
    if not rows:
        rows = [[MISSING, MISSING, MISSING, MISSING]]
    lines = table(["seeds", "replica loop", "compiled chunk (MiB, XLA)", "peak in use so far (MiB, device)"], rows)
    lines.append("")
    if s.get("rows_reason"):
        lines.append(s["rows_reason"] + ".")
    if measured(s.get("bytes_limit")):
        lines.append(f"Device memory limit {mib(s['bytes_limit'])} MiB; peak in use over the whole run "
                     f"{mib(s.get('peak_bytes_in_use'))} MiB.")
    else:
        lines.append(f"Device memory: {MISSING} ({s.get('device_reason', 'no reason given')}).")
    fit = s.get("fitting_seeds_extrapolated", {})
    if measured(fit.get("seeds")):
        lines.append(f"Seeds that fit: about {fit['seeds']:,} ({fit.get('label', 'extrapolated')}).")
    else:
        lines.append(f"Seeds that fit: {MISSING} ({fit.get('reason', 'no reason given')}).")
    return lines


TABLES = {"scaling": ("Scaling over seeds", scaling_table), "peers": ("Peers", peers_table),
          "lambda_rules": ("What the λ rules cost", lambda_table),
          "lean_step": ("The library's step against a bare one", lean_table),
          "pbt": ("What population-based training costs", pbt_table),
          "memory": ("Memory", memory_table)}


def render(files: list[tuple[str, dict]]) -> str:
    """The markdown of every table for every file: ``files`` is ``[(path, data), ...]``."""
    out = []
    for key, (title, make) in TABLES.items():
        out += [f"### {title}", ""]
        for path, data in files:
            section = data.get("sections", {}).get(key)
            out += [heading(data, path), ""]
            reason = not_run(section)
            out += [reason] if reason else make(section)
            out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", help="JSON files written by accelerator.py")
    parser.add_argument("--out", default=None, help="write the markdown here instead of printing it")
    args = parser.parse_args(argv)
    text = render([(path, load(path)) for path in args.files])
    if args.out:
        pathlib.Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
