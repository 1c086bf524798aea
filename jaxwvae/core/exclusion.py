"""Which runs a report excludes as over- or underfit (paper, section 4 and Appendix B).

The paper "monitors the value of T and excludes results when the model overfits
or underfits" without saying how. The criteria here read a run's final test
metrics (per image) and are applied in this order:

* ``diverged``: the loss or a parameter became non-finite.
* ``underfit`` (posterior collapse): the test KL is below ``MIN_KL`` = 1 nat.
  The mean KL bounds the mutual information between an image and its code, so
  under 1 nat the decoder ignores z. This is where a λ that keeps rising drives
  a run: q(z|x) → N(0, I) and T → 0 from below.
* ``overfit`` (generalisation): the test reconstruction exceeds the training
  one (same images count, same sampling) by more than ``MAX_GAP`` = 5 %.

Everything else is kept. Reports show their tables with and without the excluded runs.

A very negative T (σ well below 1: Appendix B's "ELBO_W above log P(x)") is
not a reason: the λ study (README, "The λ study") measured T ≈ −55 … −71 per
image for every ELBO_W run with λ ≲ 3, with train/test reconstruction gaps of
at most 2.2 % and the best FIDs of all ELBO_W readings, and WAE-MMD does not
penalise σ at all; an earlier criterion, T < −m, excluded exactly those runs.
"""

from __future__ import annotations

MIN_KL = 1.0
MAX_GAP = 0.05


def classify(run: dict) -> tuple[bool, str | None]:
    """``(excluded, reason)`` for one entry of results.json's ``runs``."""
    if run.get("diverged"):
        return True, f"diverged at step {run.get('diverged_step')}"
    if run["kl"] < MIN_KL:
        return True, f"underfit: test KL {run['kl']:.3g} < {MIN_KL:g} nat (posterior collapse)"
    gap = (run["rec"] - run["train_rec"]) / abs(run["train_rec"])
    if gap > MAX_GAP:
        return True, f"overfit: test reconstruction {100 * gap:.1f}% above training (> {100 * MAX_GAP:g}%)"
    return False, None


def kept(runs: list[dict]) -> list[dict]:
    """The runs not excluded."""
    return [r for r in runs if not r["excluded"]]
