"""``jaxwvae generate RUN_DIR``: prior samples and test reconstructions of a finished run's replicas, as PNGs.

    jaxwvae generate runs/mnist_w --replicas 8 --n 16

Writes prior_samples.png and test_reconstructions.png into RUN_DIR (the pictures ``--plots`` adds);
the replicas are the first seeds of each grid point first.
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Sequence

from jaxwvae import cli


def main(argv: Sequence[str], prog: str | None = "generate") -> int:
    parser = cli.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=pathlib.Path, help="the folder of a finished sweep")
    parser.add_argument("--replicas", type=cli.count, default=6, help="replicas shown (default 6)")
    parser.add_argument("--n", type=cli.count, default=16, help="images per replica (default 16)")
    args = parser.parse_args(argv)
    from jaxwvae.reports import plots

    for path in plots.write_run_images(args.run_dir, replicas=args.replicas, n=args.n):
        print(f"wrote {path}")
    return 0
