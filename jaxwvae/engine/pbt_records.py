"""What population-based training did, from its per-round records: events, lineages, the winners.

A run with ``pbt_every`` keeps, per replica and round ``k`` (the round after step
``steps[k]``): the validation ``fitness`` that ranked it, the ``donor`` whose state it
copied (−1 where it kept its own), and each evolving field's value ``before`` and ``after``
the round. Everything here is NumPy on those host arrays.
"""

from __future__ import annotations

import math

import numpy as np


def number(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def events(steps, donor, before: dict, after: dict, population) -> list[dict]:
    """One ``{step, population, recipient, donor, before, after}`` per copy, in round then replica order.

    ``before``/``after`` map each evolving field to ``[replicas, rounds]`` values; an event's
    ``before`` is the recipient's own values, ``after`` what it trains with from then on.
    """
    out = []
    for k, step in enumerate(steps):
        for r in np.flatnonzero(donor[:, k] >= 0):
            out.append({"step": int(step), "population": int(population[r]), "recipient": int(r),
                        "donor": int(donor[r, k]),
                        "before": {f: number(v[r, k]) for f, v in before.items()},
                        "after": {f: number(v[r, k]) for f, v in after.items()}})
    return out


def lineage(donor, replica: int) -> list[int]:
    """The replica whose state ``replica`` carries in each segment: ``[before round 0, …, after the last]``.

    Read backwards: after the last round it is ``replica``; before a round in which it copied a
    donor, the donor's line.
    """
    rounds = donor.shape[1]
    line = [replica] * (rounds + 1)
    current = replica
    for k in range(rounds - 1, -1, -1):
        if donor[current, k] >= 0:
            current = int(donor[current, k])
        line[k] = current
    return line


def inherited(line: list[int], per_step, steps) -> np.ndarray:
    """A per-step series (``[replicas, total]``, e.g. λ) along a lineage: segment ``k`` from its replica.

    Round ``k`` happens after step ``steps[k]`` (1-based), so steps ``steps[k-1] … steps[k] − 1``
    (0-based) belong to segment ``k``.
    """
    per_step = np.asarray(per_step)
    out = np.empty(per_step.shape[1], per_step.dtype)
    bounds = [0, *(int(s) for s in steps), per_step.shape[1]]
    for k, replica in enumerate(line):
        out[bounds[k]:bounds[k + 1]] = per_step[replica, bounds[k]:bounds[k + 1]]
    return out


def winners(final_fitness, member_matrix, donor, after: dict, steps) -> list[dict]:
    """Per population: the member with the best final fitness (lowest; non-finite never wins), its
    lineage, and the values of the evolving fields it inherited after each round."""
    out = []
    final_fitness = np.asarray(final_fitness, np.float64)
    for p, row in enumerate(np.asarray(member_matrix)):
        fitness = np.where(np.isfinite(final_fitness[row]), final_fitness[row], np.inf)
        best = int(row[np.argmin(fitness)])  # ties: the first member
        line = lineage(donor, best)
        schedule = {f: [number(v[line[k + 1], k]) for k in range(len(steps))] for f, v in after.items()}
        out.append({"population": p, "replica": best, "final_fitness": number(final_fitness[best]),
                    "lineage": [{"from_step": 0 if k == 0 else int(steps[k - 1]), "replica": int(r)}
                                for k, r in enumerate(line)],
                    "schedule": {"steps": [int(s) for s in steps], **schedule}})
    return out
