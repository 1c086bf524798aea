"""Train every seed of a sweep as one compiled program.

    python experiments/sweep.py --seeds 30                       # the paper's MNIST sweep (ELBO_W, adaptive λ)
    python experiments/sweep.py --seeds 30 --objective kl        # ELBO_KL
    python experiments/sweep.py --preset smoke --data-dir ../shared/data   # 2 seeds, 2,000 images, 1 epoch

Writes config.json, results.json and history.npz into --out; see README.md.
"""

import sys

from jaxwvae import cli

if __name__ == "__main__":
    sys.exit(cli.run_main(cli.sweep_main))
