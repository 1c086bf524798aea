"""The same training work five ways: the paper's PyTorch loop, two faster PyTorch peers, Flax, this library.

Every contender trains ``--seeds`` replicas of the paper's VAE (encoder 784-512-256 ReLU then a
dense layer to 2 x 20 = (μ, log σ²); decoder 20-256-512-784 ReLU, logits out) on MNIST batches of
100, each seed in its own order, with the per-image loss BCE(x, logits) + λ · W2²(q(z|x), N(0, I))
(``jaxwvae.objectives.elbo_w``) averaged over the batch, z = μ + σ·ε, and Adam at lr 1e-3:

(a) the paper's way: PyTorch, one seed after another; after every step statsmodels'
    ``ARIMA(history, order=(1, 1, 0)).fit()`` on that seed's whole history of T = W2² − KL and
    ``.forecast(1)`` move λ by the paper's rule (``jaxwvae.lambda_rule.next_lambda``). Timed over
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
    ``jaxwvae.train.train_step`` (``common.seed_loop_block``), λ fixed;
(e) this library: ``jaxwvae.sweep.Engine``, ``jit(vmap(train_chunk))`` running ``--steps`` steps of
    every seed per call (``common.sweep_block``), λ fixed;
(e') the same with the library's default adaptive rule (``lambda_rule="arima"``,
    ``forecaster="device"``: the running-sum ARIMA(1, 1, 0) fused into the step), the peer of (a).

The PyTorch peers share one module (``TorchVAE``) and one loss (``torch_objective``) and read
uint8 images, converted to float / 255 per batch as the library does. Prints the machine, the
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
import copy  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.func import functional_call, grad, stack_module_state, vmap  # noqa: E402

import common  # noqa: E402
from jaxwvae import config as config_lib  # noqa: E402
from jaxwvae import lambda_rule, sweep  # noqa: E402

PAPER_STEPS = 15 * 600  # 15 epochs of 600 batches of 100 MNIST images
PAPER_WARMUP = 10  # steps of T history each seed of (a) has before its first timed fit
ARIMA_ORDER = (1, 1, 0)


# --------------------------------------------------------------------------------------
# The PyTorch model and loss, shared by (a), (b) and (c).


class TorchVAE(torch.nn.Module):
    """``jaxwvae.models.VAE`` in PyTorch: ``forward(x, eps) -> (logits, mu, logvar)``."""

    def __init__(self, hidden=(512, 256), latent_dim: int = 20, in_dim: int = 784):
        super().__init__()

        def mlp(widths):
            layers = []
            for a, b in zip(widths[:-1], widths[1:], strict=True):
                layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
            return torch.nn.Sequential(*layers[:-1])  # no ReLU after the last layer

        self.encoder = mlp([in_dim, *hidden, 2 * latent_dim])
        self.decoder = mlp([latent_dim, *reversed(hidden), in_dim])

    def forward(self, x, eps):
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decoder(z), mu, logvar


def torch_objective(outputs, x, lam):
    """``(loss, T)``: batch means of BCE + λ · W2² (the loss) and of W2² − KL (the paper's gap T)."""
    logits, mu, logvar = outputs
    rec = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    w2 = (mu.square() + torch.expm1(0.5 * logvar).square()).sum(-1)
    kl = 0.5 * (mu.square() + torch.expm1(logvar) - logvar).sum(-1)
    return (rec + lam * w2).mean(), (w2 - kl).mean()


def torch_loss(model, x, eps, lam):
    return torch_objective(model(x, eps), x, lam)


class TorchSeed:
    """One seed of the PyTorch loops: its model, Adam, data order, λ and history of T."""

    def __init__(self, seed: int, n_train: int, config, in_dim: int):
        torch.manual_seed(seed)
        self.model = TorchVAE(config.hidden, config.latent_dim, in_dim)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))
        self.lam = 1.0
        self.history: list[float] = []

    def step(self, images, i: int, size: int, latent_dim: int) -> torch.Tensor:
        """One Adam step on batch ``i`` of this seed's order; returns T (a 0-d tensor, no grad)."""
        x = images[self.order[i * size:(i + 1) * size]].float() / 255.0
        loss, t = torch_loss(self.model, x, torch.randn(size, latent_dim), self.lam)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return t.detach()


def functional_grads(models):
    """``(params, grads_fn)`` for ``torch.func``: the models' parameters stacked on a leading seed
    axis, and ``grads_fn(params, x, eps, lam)`` giving every seed's gradients at once."""
    params, _ = stack_module_state(models)  # the model has no buffers
    base = copy.deepcopy(models[0]).to("meta")

    def loss(p, x, eps, lam):
        return torch_objective(functional_call(base, p, (x, eps)), x, lam)[0]

    return params, vmap(grad(loss), in_dims=(0, 0, 0, None))


def arima_forecast(history) -> float:
    """The paper's forecaster: statsmodels' ARIMA(1, 1, 0) fitted to the whole history, T̂_{t+1}."""
    from statsmodels.tsa.arima.model import ARIMA

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(ARIMA(np.asarray(history, np.float64), order=ARIMA_ORDER).fit().forecast(1)[0])


def next_lambda(lam: float, t_hat: float, t: float) -> float:
    return float(lambda_rule.next_lambda(lam, t_hat, t, xp=np))


# --------------------------------------------------------------------------------------
# Timed blocks.


def torch_loop_block(seeds, images, steps, config, *, first=0, forecast=None):
    """(b), or (a) given ``forecast(history) -> T̂``: each seed's ``steps`` steps from batch ``first``,
    one seed after another. With ``forecast``, λ moves after every step (with T̂ = T while a seed's
    history has at most ``PAPER_WARMUP`` values)."""
    size, m = config.batch_size, config.latent_dim
    per_epoch = len(images) // size

    def block():
        for s in seeds:
            for i in range(first, first + steps):
                t = s.step(images, i % per_epoch, size, m)
                if forecast is not None:
                    s.history.append(float(t))
                    t_hat = forecast(s.history) if len(s.history) > PAPER_WARMUP else s.history[-1]
                    s.lam = next_lambda(s.lam, t_hat, s.history[-1])

    return block


def torch_vmap_block(seeds, images, steps, config):
    """(c): every seed at once with ``torch.func``, Adam on the stacked parameters."""
    size, m = config.batch_size, config.latent_dim
    params, grads_fn = functional_grads([s.model for s in seeds])
    opt = torch.optim.Adam(params.values(), lr=config.learning_rate)
    orders = torch.stack([s.order for s in seeds])

    def block():
        for i in range(steps):
            x = images[orders[:, i * size:(i + 1) * size]].float() / 255.0
            grads = grads_fn({k: p.detach() for k, p in params.items()}, x, torch.randn(len(seeds), size, m), 1.0)
            for k, p in params.items():
                p.grad = grads[k]
            opt.step()

    return block


def continued(history, length: int, rng) -> np.ndarray:
    """``history`` continued to ``length`` values by its own differences, resampled."""
    history = np.asarray(history, np.float64)
    steps = rng.choice(np.diff(history), max(0, length - len(history)))
    return np.concatenate([history, history[-1] + np.cumsum(steps)])


def paper_way(images, config, args):
    """(a): the measured ms per sweep step, the fits' share of it, and the 9,000-step extrapolation."""
    seeds = [TorchSeed(seed, len(images), config, images.shape[1]) for seed in config.seeds]
    fit_s = []

    def timed_forecast(history):
        start = time.perf_counter()
        out = arima_forecast(history)
        fit_s.append(time.perf_counter() - start)
        return out

    torch_loop_block(seeds, images, PAPER_WARMUP, config, forecast=arima_forecast)()
    arima_forecast(seeds[0].history)  # statsmodels' imports and first-call costs
    run = torch_loop_block(seeds, images, args.paper_steps, config, first=PAPER_WARMUP, forecast=timed_forecast)

    def block():
        for s in seeds:
            del s.history[PAPER_WARMUP:]  # every repeat fits the same history lengths
        run()

    measured = common.median_ms(block, args.repeats) / args.paper_steps
    h1 = PAPER_WARMUP + (args.paper_steps + 1) / 2
    f1 = 1e3 * sum(fit_s) / len(fit_s)
    long_history = continued(seeds[0].history, PAPER_STEPS, np.random.default_rng(0))
    f2 = common.median_ms(lambda: arima_forecast(long_history), args.repeats)
    mean_fit = f1 + (f2 - f1) * ((PAPER_STEPS + 1) / 2 - h1) / (PAPER_STEPS - h1)
    return {"measured_ms_per_step": measured, "history_from": PAPER_WARMUP + 1,
            "history_to": PAPER_WARMUP + args.paper_steps, "mean_history": h1, "fit_ms_at_mean_history": f1,
            "fit_ms_at_9000": f2, "mean_fit_ms_9000_step_run": mean_fit,
            "ms_per_step": measured + len(seeds) * (mean_fit - f1)}


# --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=50, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paper-steps", type=int, default=30, help="timed steps per seed of (a)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="append the result to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    def library_config(rule):
        return config_lib.paper_mnist(seeds=tuple(range(args.seeds)), lambda_rule=rule, forecaster="device",
                                      data_dir=args.data_dir, steps_per_call=args.steps).resolved()

    config = library_config("fixed")
    images_np = sweep.load_split(config, "train")
    n_train, in_dim = images_np.shape
    ms = {}

    def timed(name, block, steps):
        start = time.perf_counter()
        block()  # warm-up (compiles)
        ms[name] = common.median_ms(block, args.repeats) / steps
        print(f"  {name}: {ms[name]:.3f} ms per sweep step (took {time.perf_counter() - start:.0f} s)", flush=True)

    # (e), (e') and (d): the library and Flax
    for name, rule in (("e", "fixed"), ("e'", "arima")):
        cfg = library_config(rule)
        engine = sweep.Engine(cfg, sweep.make_plan(cfg, n_train, jax.device_count()), in_dim)
        timed(name, common.sweep_block(engine, engine.put_images(images_np)), engine.plan.chunk)
    steps = engine.plan.chunk  # --steps, or the largest divisor of 600 below it
    timed("d", common.seed_loop_block(engine, images_np, steps), steps)

    # (b), (c) and (a): PyTorch
    images = torch.from_numpy(images_np)
    timed("b", torch_loop_block([TorchSeed(s, n_train, config, in_dim) for s in config.seeds], images, steps,
                                config), steps)
    timed("c", torch_vmap_block([TorchSeed(s, n_train, config, in_dim) for s in config.seeds], images, steps,
                                config), steps)
    paper = paper_way(images, config, args)
    ms["a"] = paper["ms_per_step"]

    rows = {"a": "PyTorch loop + statsmodels ARIMA, adaptive λ",
            "b": "PyTorch loop over seeds, fixed λ",
            "c": "PyTorch torch.func vmap, fixed λ",
            "d": "Flax loop over seeds of a jitted step, fixed λ",
            "e": "jaxwvae sweep (jit(vmap)), fixed λ",
            "e'": "jaxwvae sweep, adaptive λ (device ARIMA)"}
    print(f"machine: {common.machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{args.seeds} seeds, batch {config.batch_size}, model 784-512-256-2x{config.latent_dim} / "
          f"{config.latent_dim}-256-512-784, Adam {config.learning_rate:g}; median of {args.repeats} blocks of "
          f"{steps} steps ((a): {args.paper_steps} steps per seed after {PAPER_WARMUP} warm-up steps)")
    print(f"{'':52s} {'ms/sweep step':>13s} {'s/15 epochs':>12s} {'x (e)':>8s}")
    for name, label in rows.items():
        mark = "  EXTRAPOLATED (see below)" if name == "a" else ""
        print(f"{'(' + name + ')':5s}{label:47s} {ms[name]:13.3f} {ms[name] * PAPER_STEPS / 1e3:12.1f} "
              f"{ms[name] / ms['e']:8.2f}{mark}")
    print(f"(a) measured {paper['measured_ms_per_step']:.3f} ms per sweep step at histories of "
          f"{paper['history_from']}-{paper['history_to']} values, {args.seeds} x {paper['fit_ms_at_mean_history']:.2f} "
          f"ms of it in fits; one fit at 9,000 values (seed 0's T continued synthetically) took "
          f"{paper['fit_ms_at_9000']:.2f} ms; linear in the length, fits average "
          f"{paper['mean_fit_ms_9000_step_run']:.2f} ms over a 9,000-step run, which gives the row above "
          f"(OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')})")
    ratio_adaptive = ms["a"] / ms["e'"]
    print(f"(a) / (e'): {ratio_adaptive:.1f}x")
    common.write(args.json, {"benchmark": "peers", "seeds": args.seeds, "steps": steps, "repeats": args.repeats,
                             "paper_steps": args.paper_steps, "paper_warmup": PAPER_WARMUP,
                             "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                             "ms_per_step": ms, "ratio_to_e": {k: v / ms["e"] for k, v in ms.items()},
                             "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "paper": paper,
                             "a_extrapolated": True})


if __name__ == "__main__":
    main()
