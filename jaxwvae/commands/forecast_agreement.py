"""How often the device forecaster's T̂ has the sign statsmodels' ARIMA gives, on a real run.

    jaxwvae forecast-agreement RUN_DIR --replicas 4 --steps 2000 --workers 2

RUN_DIR is a finished sweep trained with ``--forecaster device`` (or ``host``,
the same estimator): its ``history.npz`` holds, per replica and step, the gap
``t_gap`` (T_t) and the running-sum ARIMA(p, d, 0) forecast ``t_forecast``
(T̂_{t+1}) that moved λ. For the first K replicas and N steps this refits
``statsmodels.tsa.arima.model.ARIMA(T_1..T_t, order=arima_order, trend="n")``
after every step t (``jaxwvae.forecast.reference.reference_forecasts``; order
from the run's config.json, the same warm-up) and measures

* the fraction of steps on which sign(device T̂) == sign(statsmodels T̂),
  with sign(0) = +1 (both ``>= 0`` or both ``< 0``): the sign alone decides
  whether λ rises or falls, so this is how often the cheap estimator moves λ
  the way the reference would; per replica and overall, over the steps where
  both forecasts are finite (a diverged replica stops counting);
* the median absolute difference of the two forecasts;
* the wall time.

Prints them and writes RUN_DIR/forecast_agreement.json. With
``--refit-every K`` statsmodels refits every K steps and extends the fit in
between (much faster on long runs). A full fit costs O(t), so refitting every
step costs O(N²) per replica: on a 2-core x86_64 box a fit takes ~7 ms of CPU
at 100 values and ~60 ms at 9,000, so 30 replicas x 9,000 steps needs ~2.5
CPU-hours (~75 min on 2 workers); ``--refit-every 50`` brings that to ~10
CPU-minutes.
"""

import argparse
import pathlib
import sys
import time

import numpy as np

from jaxwvae import cli
from jaxwvae.errors import UserError
from jaxwvae.forecast.pool import worker_count
from jaxwvae.forecast.reference import forecast_agreement, reference_forecasts
from jaxwvae.runs import rundir

OUTPUT = "forecast_agreement.json"


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be >= 1")
    return value


def main(argv, prog: str | None = "forecast_agreement.py") -> int:
    parser = cli.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=pathlib.Path, help="folder of a finished sweep (device forecaster)")
    parser.add_argument("--replicas", type=positive, default=None, help="use the first K replicas (default all)")
    parser.add_argument("--steps", type=positive, default=None, help="use the first N steps (default all)")
    parser.add_argument("--workers", type=positive, default=None, help="processes (default min(replicas, cpus))")
    parser.add_argument("--refit-every", type=positive, default=1, help="statsmodels refit interval (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no per-replica progress on stderr")
    args = parser.parse_args(argv)

    run = args.run_dir
    for name in (rundir.CONFIG, rundir.HISTORY):
        if not (run / name).exists():
            raise UserError(f"{run} has no {name}; pass the folder of a finished sweep")
    config = rundir.read_json(run / rundir.CONFIG)["config"]
    order = tuple(int(v) for v in config["arima_order"])
    with np.load(run / rundir.HISTORY) as history:
        t_gap = history["t_gap"][: args.replicas, : args.steps]
        device = history["t_forecast"][: args.replicas, : args.steps]
        seeds = history["seeds"] if "seeds" in history.files else np.arange(len(t_gap))
    if not np.isfinite(device).any():
        raise UserError(f"{run}: t_forecast holds no forecasts (lambda_rule {config.get('lambda_rule')!r}); "
                        f"pass a run trained with the adaptive λ rule")
    if config.get("forecaster") == "statsmodels":
        print("note: this run's forecasts already are statsmodels'", file=sys.stderr)

    replicas, steps = t_gap.shape
    start = time.perf_counter()

    def progress(done, total):
        if not args.quiet:
            print(f"  {done}/{total} replicas, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)

    reference = reference_forecasts(t_gap, order, refit_every=args.refit_every, workers=args.workers,
                                    progress=progress)
    wall_s = time.perf_counter() - start
    summary = forecast_agreement(device, reference)
    out = {
        "run": str(run),
        "arima_order": list(order),
        "replicas": replicas,
        "steps": steps,
        "refit_every": args.refit_every,
        "workers": worker_count(args.workers, replicas),
        "wall_s": wall_s,
        "seeds": [int(s) for s in seeds[:replicas]],
        **summary,
    }
    rundir.write_json(run / OUTPUT, out)
    print(f"ARIMA{order}, {replicas} replicas x {steps} steps, refit every {args.refit_every}: {wall_s:.1f} s")
    for r in range(replicas):
        print(f"  replica {r} (seed {out['seeds'][r]}): sign agreement {summary['sign_agreement'][r]:.4f} "
              f"over {summary['steps_compared'][r]} steps, median |diff| {summary['median_abs_diff'][r]:.4g}")
    print(f"overall: sign agreement {summary['sign_agreement_overall']:.4f}, "
          f"median |diff| {summary['median_abs_diff_overall']:.4g}; wrote {run / OUTPUT}")
    return 0
