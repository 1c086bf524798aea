"""What the adaptive λ costs: the same sweep with each λ rule and forecaster, end to end.

Contenders (all ``sweep.run`` on the same MNIST subset, seeds and steps):
  fixed                     λ constant: the floor;
  device                    the ARIMA(1,1,0) CLS forecaster fused into the compiled step (default);
  host                      the same estimator in numpy between steps (one compiled step per call);
  statsmodels, refit 1      statsmodels ARIMA refitted to every replica's history after every step;
  statsmodels, refit K      refitted every K steps, extended with the new values in between.
Each is timed over ``--steps`` steps (train_s of results.json: training, metric fetches and the
final checkpoint; no compile). statsmodels' cost grows with the history, so the script also
times one fit at history lengths 100, 1,000 and 9,000 and extrapolates the paper's 9,000-step
run from them (trapezoid over the step count), labelled as extrapolated.

    python benchmarks/lambda_speed.py --seeds 30 --steps 200 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import common
import numpy as np

from jaxwvae import config as config_lib
from jaxwvae.engine import sweep
from jaxwvae.engine.program import replica_loop
from jaxwvae.forecast.pool import worker_count

PAPER_STEPS = 15 * 600
FIT_LENGTHS = (100, 1000, 9000)


def time_sweep(config) -> float:
    """Training seconds per step of one run of ``config`` (no compile)."""
    with tempfile.TemporaryDirectory() as out:
        results = sweep.run(config, out, progress=False)
    return results["timing"]["train_s"] / (config.epochs * config.train_size // config.batch_size)


def fit_ms(length: int, order, repeats: int) -> float:
    """Median ms of one statsmodels ARIMA fit + one-step forecast on a series of ``length`` values."""
    from statsmodels.tsa.arima.model import ARIMA

    rng = np.random.default_rng(0)
    e = rng.normal(size=length)
    series = np.cumsum(np.convolve(e, [1.0, 0.5])[:length])  # an integrated AR-like series

    def one():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ARIMA(series, order=order).fit().forecast(1)

    return common.median_ms(one, repeats)


def measure(*, seeds: int, steps: int, refit_every: int, workers=None, data_dir=None, test_size: int = 1000,
            fit_lengths=FIT_LENGTHS, fit_repeats: int = 5, deadline=None, log=print, **model) -> dict:
    """Every rule's ms per sweep step, statsmodels' fit times and the extrapolated refit-1 fitting time.

    ``model``: ``hidden`` / ``latent_dim`` other than the paper's (a smoke run's smaller model).

    ``deadline`` (a ``time.perf_counter()`` value): a rule not started by then is skipped, its
    reason recorded in ``not_measured``.
    """
    base = config_lib.paper_mnist(seeds=tuple(range(seeds)), epochs=1, train_size=100 * steps,
                                  test_size=test_size, data_dir=data_dir, checkpoint_every=0, **model)
    contenders = {
        "fixed": dict(lambda_rule="fixed"),
        "device": dict(lambda_rule="arima", forecaster="device"),
        "host": dict(lambda_rule="arima", forecaster="host"),
        "statsmodels, refit 1": dict(lambda_rule="arima", forecaster="statsmodels", refit_every=1),
        f"statsmodels, refit {refit_every}": dict(lambda_rule="arima", forecaster="statsmodels",
                                                 refit_every=refit_every),
    }
    ms, loops, skipped = {}, {}, {}
    for name, fields in contenders.items():
        if deadline is not None and time.perf_counter() > deadline:
            skipped[name] = "time budget of the λ rules section spent before this rule started"
            continue
        start = time.perf_counter()
        config = config_lib.paper_mnist(**{**vars(base), **fields}).resolved()
        ms[name] = 1e3 * time_sweep(config)
        loops[name] = replica_loop(config)
        log(f"  {name}: {ms[name]:.2f} ms/step ({time.perf_counter() - start:.0f} s with compile)")

    workers = worker_count(workers, seeds)
    fits = {n: fit_ms(n, base.arima_order, repeats=fit_repeats) for n in fit_lengths}
    # one refit per replica per step, spread over the workers; trapezoid over the history length
    lengths = np.array([1, *fit_lengths], float)
    per_fit = np.array([fits[fit_lengths[0]], *fits.values()])
    total_fit_s = np.trapezoid(per_fit, lengths) / 1e3 * seeds / workers
    return {"seeds": seeds, "steps": steps, "batch_size": base.batch_size, "hidden": list(base.hidden),
            "latent_dim": base.latent_dim, "ms_per_step": ms,
            "replica_loop": loops, "not_measured": skipped, "fit_ms": fits, "workers": workers,
            "statsmodels_refit1_full_run_s_extrapolated": float(total_fit_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=200, help="steps per timed run (a multiple of 100)")
    parser.add_argument("--refit-every", type=int, default=50)
    parser.add_argument("--workers", type=int, default=None, help="statsmodels processes (default: all cores)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="append the result to this JSON file")
    args = parser.parse_args()

    out = measure(seeds=args.seeds, steps=args.steps, refit_every=args.refit_every, workers=args.workers,
                  data_dir=args.data_dir, log=lambda line: print(line, flush=True))
    ms, fits, workers = out["ms_per_step"], out["fit_ms"], out["workers"]
    total_fit_s = out["statsmodels_refit1_full_run_s_extrapolated"]
    print(f"machine: {common.machine()}")
    print(f"{args.seeds} seeds, batch 100, {args.steps} steps each run; ms per sweep step; ratio to 'device'")
    for name, v in ms.items():
        print(f"  {name:24s} {v:10.2f} ms  {v / ms['device']:8.2f}x  -> {v * PAPER_STEPS / 1e3:9.0f} s "
              f"for 15 MNIST epochs at this rate")
    print("statsmodels ARIMA fit + forecast, one series: " +
          ", ".join(f"{n} values {v:.1f} ms" for n, v in fits.items()))
    print(f"statsmodels, refit 1, a full 9,000-step run of {args.seeds} seeds on {workers} workers "
          f"(EXTRAPOLATED from those fits): {total_fit_s:.0f} s of fitting alone")
    common.write(args.json, {"benchmark": "lambda_speed", **out})


if __name__ == "__main__":
    main()
