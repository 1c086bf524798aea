"""The same training work five ways: the paper's PyTorch loop, two faster PyTorch peers, Flax, this library.

Every contender trains ``--seeds`` replicas of the paper's VAE (encoder 784-512-256 ReLU then a
dense layer to 2 x 20 = (μ, log σ²); decoder 20-256-512-784 ReLU, logits out) on MNIST batches of
100, each seed in its own order, with the per-image loss BCE(x, logits) + λ · W2²(q(z|x), N(0, I))
(``jaxwvae.core.objectives.elbo_w``) averaged over the batch, z = μ + σ·ε, and Adam at lr 1e-3:

(a) the paper's way: PyTorch, one seed after another; after every step statsmodels'
    ``ARIMA(history, order=(1, 1, 0)).fit()`` on that seed's whole history of T = W2² − KL and
    ``.forecast(1)`` move λ by the paper's rule (``jaxwvae.core.lambda_rule.next_lambda``). Timed over
    ``--paper-steps`` steps per seed after ``PAPER_WARMUP`` untimed steps (λ moved with T̂ = T),
    so the timed fits see histories of 11 … 10 + ``--paper-steps`` values, mean h₁. A fit's cost
    grows with the history, so the 15-epoch figure is EXTRAPOLATED: the fits' own time is
    measured inside the loop (mean cost f₁ at h₁), one fit alone is timed at 9,000 values (f₂;
    seed 0's real T continued by its own differences, resampled), the cost is taken as linear in
    the length, and the per-step time is the measured one with each seed's fit at h₁ replaced by
    the mean fit over histories 1 … 9,000: measured + seeds x (f₁ + (f₂ − f₁)(4,500.5 − h₁) / (9,000
    − h₁) − f₁). NumPy's OpenBLAS (statsmodels' linear algebra; torch uses MKL) runs on one thread
    unless ``OPENBLAS_NUM_THREADS`` says otherwise: on a 2-core machine threaded OpenBLAS made
    these tiny fits 2-8x slower, which would flatter the library;
(b) PyTorch, one seed after another, λ fixed at 1;
(c) PyTorch ``torch.func``: ``vmap(grad(functional_call))`` over parameters stacked by
    ``stack_module_state``, all seeds at once, λ fixed; ``torch.optim.Adam`` on the stacked tensors
    (Adam is elementwise, so this is each seed's own Adam);
(d) Flax, one seed after another: a Python loop over seeds of one jitted single-seed
    ``jaxwvae.replica.train.train_step`` (``common.seed_loop_block``), λ fixed;
(e) this library: ``jaxwvae.engine.program.Program``, one compiled call running ``--steps`` steps of every seed
    (``common.sweep_block``), λ fixed; the replicas batched (``vmap``) or, where ``replica_loop="auto"``
    picks it (a single CPU device), one after another inside the program (``lax.map``);
(e') the same with the library's default adaptive rule (``lambda_rule="arima"``,
    ``forecaster="device"``: the running-sum ARIMA(1, 1, 0) fused into the step), the peer of (a).

The PyTorch peers (``torch_peers.py``) share one module (``TorchVAE``) and one loss
(``torch_objective``), read uint8 images, converted to float / 255 per batch as the library does,
and run on torch's GPU when it sees one (``--torch-device``). Without torch they are skipped, with
the reason recorded. On a single CPU device (e) is measured with both replica loops (``vmap`` and
``map``, ``SweepConfig.replica_loop``) and each row records the loop it used. Prints the machine, the
median ms per sweep step (one step of every seed) over ``--repeats`` timed blocks of ``--steps``
steps (``--paper-steps`` for (a)), the seconds a 15-epoch MNIST sweep (9,000 steps) would take at
that rate, and each peer's ratio to (e) ((a) also to (e')).

    python benchmarks/peers.py --seeds 30 --data-dir ../shared/data
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # before NumPy loads (and not when a test imports this file); see (a) above
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import common  # noqa: E402
import jax  # noqa: E402

from jaxwvae import config as config_lib  # noqa: E402
from jaxwvae.engine.plan import load_split, make_plan  # noqa: E402
from jaxwvae.engine.program import Program, replica_loop  # noqa: E402

try:
    import torch
except ImportError as error:  # the JAX peers still run
    torch, TORCH_MISSING = None, f"torch is not installed ({error})"
else:
    TORCH_MISSING = None
    import torch_peers  # noqa: E402

PAPER_STEPS = 15 * 600  # 15 epochs of 600 batches of 100 MNIST images
ROWS = {"a": "PyTorch loop + statsmodels ARIMA, adaptive λ",
        "b": "PyTorch loop over seeds, fixed λ",
        "c": "PyTorch torch.func vmap, fixed λ",
        "d": "Flax loop over seeds of a jitted step, fixed λ",
        "e": "jaxwvae sweep, fixed λ (the replica loop auto picks)",
        "e'": "jaxwvae sweep, adaptive λ (device ARIMA)",
        "e_vmap": "jaxwvae sweep, fixed λ, replicas batched (vmap)",
        "e_map": "jaxwvae sweep, fixed λ, replicas one after another (lax.map)"}


def e_loops() -> list[str]:
    """The replica loops (e) is measured with: both on a single CPU device (where ``auto`` picks ``map``),
    else ``vmap`` alone. (e) is the one ``auto`` picks; the other is ``e_vmap`` or ``e_map``."""
    if jax.devices()[0].platform == "cpu" and jax.device_count() == 1:
        return ["map", "vmap"]
    return ["vmap"]


def measure(*, seeds: int, steps: int, repeats: int, paper_steps: int, data_dir=None, train_size=None,
            torch_device=None, deadline=None, log=print, **model) -> dict:
    """Every peer's median ms per sweep step, their loops, ratios to (e) and (a)'s extrapolation.

    ``model``: ``hidden`` / ``latent_dim`` other than the paper's (a smoke run's smaller model).

    ``deadline`` (a ``time.perf_counter()`` value): a peer not started by then is skipped, its
    reason recorded in ``not_measured``, as is every PyTorch peer when torch is missing.
    """
    def library_config(rule, loop="auto"):
        return config_lib.paper_mnist(seeds=tuple(range(seeds)), lambda_rule=rule, forecaster="device",
                                      data_dir=data_dir, train_size=train_size, steps_per_call=steps,
                                      replica_loop=loop, **model).resolved()

    config = library_config("fixed")
    images_np = load_split(config, "train")
    n_train, in_dim = images_np.shape
    ms, loops, skipped, took = {}, {}, {}, {}

    def over_budget(name) -> bool:
        if deadline is not None and time.perf_counter() > deadline:
            skipped[name] = "time budget of the peers section spent before this peer started"
            return True
        return False

    def timed(name, make_block, steps):
        if over_budget(name):
            return
        start = time.perf_counter()
        block = make_block()
        block()  # warm-up (compiles)
        ms[name] = common.median_ms(block, repeats) / steps
        took[name] = time.perf_counter() - start
        log(f"  {name}: {ms[name]:.3f} ms per sweep step (took {took[name]:.0f} s)")

    def program_for(rule, loop):
        cfg = library_config(rule, loop)
        return Program.compile(cfg, make_plan(cfg, n_train, jax.device_count()), in_dim)

    def library_block(rule, loop):
        program = program_for(rule, loop)
        return common.sweep_block(program, program.put_images(images_np))

    # (e) (and on one CPU device the other replica loop too), (e') and (d): the library and Flax
    chunk = make_plan(config, n_train, jax.device_count()).chunk  # --steps, or the epoch's largest divisor below
    auto = replica_loop(config)
    for loop in e_loops():
        name = "e" if loop == auto else f"e_{loop}"
        timed(name, lambda loop=loop: library_block("fixed", loop), chunk)
        loops[name] = loop
    timed("e'", lambda: library_block("arima", "auto"), chunk)
    loops["e'"] = auto
    timed("d", lambda: common.seed_loop_block(program_for("fixed", "auto"), images_np, chunk), chunk)
    loops["d"] = "python loop over seeds"

    # (b), (c) and (a): PyTorch
    paper = None
    if torch is None:
        skipped.update({k: TORCH_MISSING for k in ("a", "b", "c")})
    else:
        device = torch_peers.default_device() if torch_device is None else torch.device(torch_device)
        images = torch.from_numpy(images_np).to(device)

        def torch_seeds():
            return [torch_peers.TorchSeed(s, n_train, config, in_dim, device) for s in config.seeds]

        timed("b", lambda: torch_peers.torch_loop_block(torch_seeds(), images, chunk, config), chunk)
        timed("c", lambda: torch_peers.torch_vmap_block(torch_seeds(), images, chunk, config), chunk)
        if not over_budget("a"):
            start = time.perf_counter()
            paper = torch_peers.paper_way(images, config, paper_steps=paper_steps, repeats=repeats)
            ms["a"] = paper["ms_per_step"]
            took["a"] = time.perf_counter() - start
            log(f"  a: {ms['a']:.3f} ms per sweep step, EXTRAPOLATED (took {took['a']:.0f} s)")
        loops.update({"a": f"python loop over seeds, torch {device.type}", "b": f"python loop over seeds, "
                      f"torch {device.type}", "c": f"torch.func.vmap, torch {device.type}"})
    out = {"seeds": seeds, "steps": chunk, "repeats": repeats, "batch_size": config.batch_size,
           "hidden": list(config.hidden), "latent_dim": config.latent_dim, "learning_rate": config.learning_rate,
           "ms_per_step": ms, "replica_loop": loops, "labels": {k: ROWS[k] for k in (*loops, *skipped)},
           "took_s": took, "not_measured": skipped,
           "ratio_to_e": {k: v / ms["e"] for k, v in ms.items()} if "e" in ms else {},
           "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS")}
    if torch is not None:
        out.update({"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                    "torch_device": device.type, "paper_steps": paper_steps,
                    "paper_warmup": torch_peers.PAPER_WARMUP})
    if paper is not None:
        out.update({"paper": paper, "a_extrapolated": True})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=50, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paper-steps", type=int, default=30, help="timed steps per seed of (a)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
    parser.add_argument("--torch-device", default=None, help="cpu or cuda (default: cuda when torch sees a GPU)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="append the result to this JSON file")
    args = parser.parse_args()
    if torch is not None:
        torch.set_num_threads(args.threads)
    out = measure(seeds=args.seeds, steps=args.steps, repeats=args.repeats, paper_steps=args.paper_steps,
                  data_dir=args.data_dir, torch_device=args.torch_device,
                  log=lambda line: print(line, flush=True))
    ms, steps = out["ms_per_step"], out["steps"]
    torch_text = TORCH_MISSING or (f"torch {torch.__version__} on {out['torch_device']}, "
                                   f"{torch.get_num_threads()} threads")
    print(f"machine: {common.machine()}; {torch_text}")
    print(f"{args.seeds} seeds, batch {out['batch_size']}, the paper's model, Adam {out['learning_rate']:g}; "
          f"median of {args.repeats} blocks of "
          f"{steps} steps ((a): {args.paper_steps} steps per seed after its warm-up steps)")
    print(f"{'':70s} {'ms/sweep step':>13s} {'s/15 epochs':>12s} {'x (e)':>8s}")
    for name, label in ROWS.items():
        if name not in ms:
            if name in out["not_measured"]:
                print(f"{'(' + name + ')':9s}{label:62s} not measured: {out['not_measured'][name]}")
            continue
        mark = "  EXTRAPOLATED (see below)" if name == "a" else ""
        print(f"{'(' + name + ')':9s}{label:62s} {ms[name]:13.3f} {ms[name] * PAPER_STEPS / 1e3:12.1f} "
              f"{ms[name] / ms['e']:8.2f}  [{out['replica_loop'][name]}]{mark}")
    paper = out.get("paper")
    if paper is not None:
        print(f"(a) measured {paper['measured_ms_per_step']:.3f} ms per sweep step at histories of "
              f"{paper['history_from']}-{paper['history_to']} values, {args.seeds} x "
              f"{paper['fit_ms_at_mean_history']:.2f} ms of it in fits; one fit at 9,000 values (seed 0's T "
              f"continued synthetically) took {paper['fit_ms_at_9000']:.2f} ms; linear in the length, fits "
              f"average {paper['mean_fit_ms_9000_step_run']:.2f} ms over a 9,000-step run, which gives the row "
              f"above (OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')})")
        adaptive = ms.get("e'", float("nan"))
        print(f"(a) / (e'): {ms['a'] / adaptive:.1f}x")
    common.write(args.json, {"benchmark": "peers", **out})


if __name__ == "__main__":
    main()
