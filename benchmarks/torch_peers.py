"""The PyTorch peers of ``peers.py``: (a) the paper's loop with statsmodels, (b) a loop over seeds, (c) torch.func.

Kept apart from ``peers.py`` so that the JAX peers (and ``accelerator.py``) run where torch is not
installed. The model and loss are the library's (``tests/test_peers.py`` proves it, gradient by
gradient); ``device`` is a ``torch.device``: ``cpu``, or ``cuda`` on an NVIDIA GPU, where every
timed block ends with ``torch.cuda.synchronize()``.
"""

from __future__ import annotations

import copy
import time
import warnings

import common
import numpy as np
import torch
from torch.func import functional_call, grad, stack_module_state, vmap

from jaxwvae.core import lambda_rule

PAPER_STEPS = 15 * 600  # 15 epochs of 600 batches of 100 MNIST images
PAPER_WARMUP = 10  # steps of T history each seed of (a) has before its first timed fit
ARIMA_ORDER = (1, 1, 0)


def default_device() -> torch.device:
    """``cuda`` when torch sees an NVIDIA GPU, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TorchVAE(torch.nn.Module):
    """``jaxwvae.core.models.VAE`` in PyTorch: ``forward(x, eps) -> (logits, mu, logvar)``."""

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

    def __init__(self, seed: int, n_train: int, config, in_dim: int, device=None):
        torch.manual_seed(seed)
        self.device = device = torch.device("cpu") if device is None else device
        self.model = TorchVAE(config.hidden, config.latent_dim, in_dim).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed)).to(device)
        self.lam = 1.0
        self.history: list[float] = []

    def step(self, images, i: int, size: int, latent_dim: int) -> torch.Tensor:
        """One Adam step on batch ``i`` of this seed's order (``images`` on this seed's device); returns T
        (a 0-d tensor, no grad)."""
        x = images[self.order[i * size:(i + 1) * size]].float() / 255.0
        loss, t = torch_loss(self.model, x, torch.randn(size, latent_dim, device=self.device), self.lam)
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


def torch_loop_block(seeds, images, steps, config, *, first=0, forecast=None):
    """(b), or (a) given ``forecast(history) -> T̂``: each seed's ``steps`` steps from batch ``first``,
    one seed after another. With ``forecast``, λ moves after every step (with T̂ = T while a seed's
    history has at most ``PAPER_WARMUP`` values)."""
    size, m = config.batch_size, config.latent_dim
    per_epoch = len(images) // size
    device = images.device

    def block():
        for s in seeds:
            for i in range(first, first + steps):
                t = s.step(images, i % per_epoch, size, m)
                if forecast is not None:
                    s.history.append(float(t))
                    t_hat = forecast(s.history) if len(s.history) > PAPER_WARMUP else s.history[-1]
                    s.lam = next_lambda(s.lam, t_hat, s.history[-1])
        synchronize(device)

    return block


def torch_vmap_block(seeds, images, steps, config):
    """(c): every seed at once with ``torch.func``, Adam on the stacked parameters."""
    size, m = config.batch_size, config.latent_dim
    params, grads_fn = functional_grads([s.model for s in seeds])
    opt = torch.optim.Adam(params.values(), lr=config.learning_rate)
    orders = torch.stack([s.order for s in seeds])
    device = images.device

    def block():
        for i in range(steps):
            x = images[orders[:, i * size:(i + 1) * size]].float() / 255.0
            eps = torch.randn(len(seeds), size, m, device=device)
            grads = grads_fn({k: p.detach() for k, p in params.items()}, x, eps, 1.0)
            for k, p in params.items():
                p.grad = grads[k]
            opt.step()
        synchronize(device)

    return block


def continued(history, length: int, rng) -> np.ndarray:
    """``history`` continued to ``length`` values by its own differences, resampled."""
    history = np.asarray(history, np.float64)
    steps = rng.choice(np.diff(history), max(0, length - len(history)))
    return np.concatenate([history, history[-1] + np.cumsum(steps)])


def paper_way(images, config, *, paper_steps: int, repeats: int):
    """(a): the measured ms per sweep step, the fits' share of it, and the 9,000-step extrapolation."""
    seeds = [TorchSeed(seed, len(images), config, images.shape[1], images.device) for seed in config.seeds]
    fit_s = []

    def timed_forecast(history):
        start = time.perf_counter()
        out = arima_forecast(history)
        fit_s.append(time.perf_counter() - start)
        return out

    torch_loop_block(seeds, images, PAPER_WARMUP, config, forecast=arima_forecast)()
    arima_forecast(seeds[0].history)  # statsmodels' imports and first-call costs
    run = torch_loop_block(seeds, images, paper_steps, config, first=PAPER_WARMUP, forecast=timed_forecast)

    def block():
        for s in seeds:
            del s.history[PAPER_WARMUP:]  # every repeat fits the same history lengths
        run()

    measured = common.median_ms(block, repeats) / paper_steps
    h1 = PAPER_WARMUP + (paper_steps + 1) / 2
    f1 = 1e3 * sum(fit_s) / len(fit_s)
    long_history = continued(seeds[0].history, PAPER_STEPS, np.random.default_rng(0))
    f2 = common.median_ms(lambda: arima_forecast(long_history), repeats)
    mean_fit = f1 + (f2 - f1) * ((PAPER_STEPS + 1) / 2 - h1) / (PAPER_STEPS - h1)
    return {"measured_ms_per_step": measured, "history_from": PAPER_WARMUP + 1,
            "history_to": PAPER_WARMUP + paper_steps, "mean_history": h1, "fit_ms_at_mean_history": f1,
            "fit_ms_at_9000": f2, "mean_fit_ms_9000_step_run": mean_fit,
            "ms_per_step": measured + len(seeds) * (mean_fit - f1)}
