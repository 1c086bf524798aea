"""PNG plots of a sweep's history: T and λ per step (paper Figures 3 and 4) and the reconstruction loss.

Every replica is a thin line; the thick line is the median over replicas and
the band spans the 10th to 90th percentile, all of a moving average over
``window`` steps (the per-step batch values are noisy). Needs matplotlib
(``pip install jaxwvae[plots]``).
"""

from __future__ import annotations

import io
import pathlib

import numpy as np

from jaxwvae.errors import UserError
from jaxwvae.runs import rundir

PANELS = {
    "t_gap": ("T = W2² − KL (batch mean per image; the paper plots 2T)", "T_gap.png"),
    "lam": ("λ, the weight of W2²", "lambda.png"),
    "rec": ("reconstruction loss (cross-entropy per image, nats)", "reconstruction.png"),
}


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plots needs matplotlib; pip install 'jaxwvae[plots]'") from None
    return plt


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` steps along the last axis (shorter at the start), NaN-aware."""
    valid = np.isfinite(x)
    csum = np.cumsum(np.where(valid, x, 0.0), axis=-1)
    ccount = np.cumsum(valid, axis=-1)
    lagged_sum = np.concatenate([np.zeros_like(csum[..., :window]), csum[..., :-window]], axis=-1)
    lagged_count = np.concatenate([np.zeros_like(ccount[..., :window]), ccount[..., :-window]], axis=-1)
    count = ccount - lagged_count
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (csum - lagged_sum) / count, np.nan)


def plot_replicas(ax, values: np.ndarray, *, window: int, title: str, zero_line: bool = False,
                  groups: dict | None = None) -> None:
    """One panel: thin line per replica, median and 10-90% band over replicas.

    With ``groups`` (label -> replica indices, e.g. a grid's points) each group gets its own colour
    and median line instead of the band.
    """
    smooth = moving_average(values.astype(np.float64), window)
    steps = np.arange(1, values.shape[1] + 1)
    if groups and len(groups) > 1:
        for k, (label, idx) in enumerate(groups.items()):
            color = f"C{k % 10}"
            for row in smooth[idx]:
                ax.plot(steps, row, color=color, alpha=0.25, linewidth=0.5)
            ax.plot(steps, np.nanmedian(smooth[idx], axis=0), color=color, linewidth=1.6, label=label)
        if zero_line:
            ax.axhline(0.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training step")
        ax.legend(loc="best", fontsize=6)
        return
    for i, row in enumerate(smooth):
        ax.plot(steps, row, color="tab:blue", alpha=0.4, linewidth=0.6, label="each replica" if i == 0 else None)
    if np.isfinite(smooth).any(axis=0).all():
        low, med, high = np.nanpercentile(smooth, [10, 50, 90], axis=0)
        ax.fill_between(steps, low, high, color="tab:orange", alpha=0.3, label="10–90% of replicas")
        ax.plot(steps, med, color="tab:red", linewidth=2, label="median")
    if zero_line:
        ax.axhline(0.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("training step")
    ax.legend(loc="best", fontsize=8)


def _focus(ax, values: np.ndarray, window: int) -> None:
    """Set the y range to the training after its first 5 % of steps (and one window more), so the first
    steps' high values do not flatten the rest (they run off the top of the panel)."""
    smooth = moving_average(values.astype(np.float64), window)[:, window + values.shape[1] // 20:]
    finite = smooth[np.isfinite(smooth)]
    if finite.size:
        low, high = np.percentile(finite, [0.5, 99.5])
        pad = 0.08 * (high - low) or 0.05 * abs(high) or 1.0
        ax.set_ylim(low - pad, high + pad)


def write_run_plots(out, *, window: int = 50) -> list[pathlib.Path]:
    """Write one PNG per panel, ``training.png`` with all three, and ``prior_samples.png`` and
    ``test_reconstructions.png`` (:func:`write_run_images`) into the run folder ``out``.

    The moving average is over ``window`` steps, or a tenth of a shorter run (the caption says which).
    """
    plt = _pyplot()
    out = pathlib.Path(out)
    with np.load(out / rundir.HISTORY) as h:
        history = {k: h[k] for k in h.files}
    window = max(1, min(window, history["loss"].shape[1] // 10))
    config = rundir.read_json(out / rundir.CONFIG)["config"]
    points = config.get("grid") or []
    groups = {", ".join(f"{k}={v}" for k, v in point.items()): np.flatnonzero(history["point"] == i)
              for i, point in enumerate(points)} if "point" in history else None
    caption = (f"{config['dataset']}, objective {config['objective']}, {len(history['seeds'])} replicas, "
               f"λ rule {config['lambda_rule']}, moving average over {window} steps")
    written = []
    fig_all, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    for ax_all, (name, (title, filename)) in zip(axes, PANELS.items()):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for target in (ax, ax_all):
            plot_replicas(target, history[name], window=window, title=title, zero_line=name == "t_gap",
                          groups=groups)
            if name == "rec":
                _focus(target, history[name], window)
        fig.suptitle(caption, fontsize=8)
        fig.tight_layout()
        written.append(_save(fig, out / filename))
        plt.close(fig)
    fig_all.suptitle(caption, fontsize=9)
    fig_all.tight_layout()
    written.append(_save(fig_all, out / "training.png"))
    plt.close(fig_all)
    if "pbt_fitness" in history:
        written.append(write_pbt_plot(out, history, rundir.read_json(out / rundir.RESULTS)["pbt"]))
    return written + write_run_images(out)


def write_run_images(out: pathlib.Path, *, replicas: int = 6, n: int = 16) -> list[pathlib.Path]:
    """``prior_samples.png`` (``n`` prior samples) and ``test_reconstructions.png`` (``n`` test images and their
    reconstructions) of the first ``replicas`` replicas of the finished run in ``out``; with a grid, the
    first seed of each point comes first."""
    import jax

    from jaxwvae import data
    from jaxwvae.config import grid
    from jaxwvae.evaluation import generate

    config, model, params = generate.load_run(out)
    seeds = grid.replica_seeds(config)
    per_point = len(config.seeds)
    order = sorted(range(len(seeds)), key=lambda r: (r % per_point, r // per_point))[:replicas]
    points = [dict(p) for p in config.grid] or [{}]

    def label(r):
        point = ", ".join(f"{k}={v}" for k, v in points[r // per_point].items())
        return f"seed {config.seeds[r % per_point]}" + (f", {point}" if point else "")

    chosen = jax.tree_util.tree_map(lambda x: np.asarray(x)[order], params)
    samples = generate.to_uint8(generate.sample_prior(model, chosen, [seeds[r] for r in order], n))
    originals, _ = data.load(config.dataset, "test", config.data_dir)
    originals = originals[:n]
    recons = generate.to_uint8(generate.reconstruct(model, chosen, originals))
    cols = 4
    return [
        write_image_panels(out / "prior_samples.png", {label(r): samples[i] for i, r in enumerate(order)}, cols=cols,
                           title=f"{n} samples from the prior per replica"),
        write_image_panels(out / "test_reconstructions.png",
                           {"test images": originals, **{label(r): recons[i] for i, r in enumerate(order)}},
                           cols=cols, title="test images and their reconstructions (decoder mean at z = μ)"),
    ]


def write_pbt_plot(out: pathlib.Path, history: dict, pbt: dict) -> pathlib.Path:
    """``pbt.png``: each population's winning schedule (λ per step, then each evolving field per round)
    beside every member's validation fitness per round (lower is better; copies marked)."""
    from jaxwvae.engine import pbt_records

    plt = _pyplot()
    steps = np.asarray(pbt["steps"])
    fields = pbt["settings"]["fields"]
    fig, axes = plt.subplots(1, 2 + len(fields), figsize=(5 * (2 + len(fields)), 4))
    for winner in pbt["winners"]:
        line = [seg["replica"] for seg in winner["lineage"]]
        label = f"population {winner['population']}"
        axes[0].plot(np.arange(1, history["lam"].shape[1] + 1),
                     pbt_records.inherited(line, history["lam"], steps), lw=1, label=label)
        for ax, f in zip(axes[1:], fields):
            ax.step(steps, winner["schedule"][f], where="post", lw=1)
    axes[0].set(title="λ of each population's winner (inherited)", xlabel="step")
    for ax, f in zip(axes[1:], fields):
        ax.set(title=f"{f} of each winner, after each round", xlabel="step")
    fit, donor = history["pbt_fitness"], history["pbt_donor"]
    ax = axes[-1]
    for r in range(fit.shape[0]):
        ax.plot(steps, fit[r], color="0.6", lw=0.6)
    copied = donor >= 0
    ax.scatter(np.broadcast_to(steps, fit.shape)[copied], fit[copied], s=8, color="C3", label="replaced")
    ax.set(title=f"validation fitness ({pbt['settings']['fitness']}) per round", xlabel="step")
    ax.legend(fontsize=7)
    if len(pbt["winners"]) <= 10:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    path = _save(fig, out / "pbt.png")
    plt.close(fig)
    return path


def _save(fig, path: pathlib.Path) -> pathlib.Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    rundir.atomic_write_bytes(path, buf.getvalue())
    return path


def tile(images, cols: int) -> np.ndarray:
    """Images ``[n, 28, 28]`` (or ``[n, 784]``) tiled into one ``[rows * 28, cols * 28]`` array, row by row."""
    images = np.asarray(images).reshape(len(images), 28, 28)
    rows = -(-len(images) // cols)
    grid = np.zeros((rows * 28, cols * 28), images.dtype)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * 28:(r + 1) * 28, c * 28:(c + 1) * 28] = image
    return grid


def write_image_panels(path, panels: dict, *, cols: int, title: str = "") -> pathlib.Path:
    """One PNG with a titled grid per entry of ``panels`` (label -> images ``[n, 28, 28]``), side by side."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6), squeeze=False)
    for ax, (label, images) in zip(axes[0], panels.items()):
        ax.imshow(tile(images, cols), cmap="gray", vmin=0, vmax=255 if np.asarray(images).dtype == np.uint8 else 1)
        ax.set_title(label, fontsize=10)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = _save(fig, pathlib.Path(path))
    plt.close(fig)
    return path
