"""Which runs a report excludes as over- or underfit (paper, section 4 and Appendix B).

The paper "monitors the value of T and excludes results when the model overfits
or underfits" without saying how. The criteria here read a run's final test
metrics (per image) and are applied in this order:

* ``diverged``: the loss or a parameter became non-finite.
* ``underfit`` (posterior collapse): the test KL is below ``MIN_KL`` = 1 nat.
  The mean KL bounds the mutual information between an image and its code, so
  under 1 nat the decoder ignores z. This is where a λ that keeps rising drives
  a run: q(z|x) → N(0, I) and T → 0 from below.
* ``overfit`` (σ collapse): the test T is below ``-T_PER_LATENT * m`` (m latents).
  Appendix B's failure mode: log σ² → −∞ drives T, and ELBO_W, without bound;
  −1 per latent corresponds to σ ≈ 0.1 in every latent with μ = 0.
* ``overfit`` (generalisation): the test reconstruction exceeds the training
  one (same images count, same sampling) by more than ``MAX_GAP`` = 5 %.

Everything else is kept. Reports show their tables with and without the excluded runs.
"""

from __future__ import annotations

MIN_KL = 1.0
T_PER_LATENT = 1.0
MAX_GAP = 0.05


def classify(run: dict, latent_dim: int) -> tuple[bool, str | None]:
    """``(excluded, reason)`` for one entry of results.json's ``runs``."""
    if run.get("diverged"):
        return True, f"diverged at step {run.get('diverged_step')}"
    if run["kl"] < MIN_KL:
        return True, f"underfit: test KL {run['kl']:.3g} < {MIN_KL:g} nat (posterior collapse)"
    if run["t_gap"] < -T_PER_LATENT * latent_dim:
        return True, f"overfit: test T {run['t_gap']:.3g} < {-T_PER_LATENT * latent_dim:g} (sigma collapse)"
    gap = (run["rec"] - run["train_rec"]) / abs(run["train_rec"])
    if gap > MAX_GAP:
        return True, f"overfit: test reconstruction {100 * gap:.1f}% above training (> {100 * MAX_GAP:g}%)"
    return False, None


def kept(runs: list[dict]) -> list[dict]:
    """The runs not excluded."""
    return [r for r in runs if not r["excluded"]]
