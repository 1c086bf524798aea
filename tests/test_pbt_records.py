"""PBT's records: events, lineages and winners from hand-made rounds (checked by hand below)."""

import numpy as np

from jaxwvae.engine import pbt_records


# one population of 3 replicas, 2 rounds (after steps 10 and 20):
# round 0: replica 2 copies 0; round 1: replica 0 copies 2 (which carries 0's line since round 0)
DONOR = np.array([[-1, 2], [-1, -1], [0, -1]])
STEPS = [10, 20]
AFTER = {"lam": np.array([[1.0, 2.4], [2.0, 2.0], [1.2, 2.0]])}
BEFORE = {"lam": np.array([[1.0, 1.0], [2.0, 2.0], [4.0, 2.0]])}


def test_events_list_each_copy_with_its_values():
    got = pbt_records.events(STEPS, DONOR, BEFORE, AFTER, population=np.zeros(3, int))
    assert got == [
        {"step": 10, "population": 0, "recipient": 2, "donor": 0, "before": {"lam": 4.0}, "after": {"lam": 1.2}},
        {"step": 20, "population": 0, "recipient": 0, "donor": 2, "before": {"lam": 1.0}, "after": {"lam": 2.4}},
    ]


def test_lineage_follows_donors_backwards():
    assert pbt_records.lineage(DONOR, 0) == [0, 2, 0]  # before round 0: 0's own; then 2 (a copy of 0); then 0
    assert pbt_records.lineage(DONOR, 2) == [0, 2, 2]
    assert pbt_records.lineage(DONOR, 1) == [1, 1, 1]


def test_inherited_series_switches_replica_at_each_round():
    per_step = np.arange(3)[:, None] * 100 + np.arange(30)[None, :]  # replica r, step s -> 100 r + s
    series = pbt_records.inherited([0, 2, 0], per_step, STEPS)
    np.testing.assert_array_equal(series[:10], np.arange(10))
    np.testing.assert_array_equal(series[10:20], 200 + np.arange(10, 20))
    np.testing.assert_array_equal(series[20:], np.arange(20, 30))


def test_the_winner_is_the_best_finite_final_fitness_with_its_schedule():
    (best,) = pbt_records.winners([np.nan, 5.0, 3.0], [[0, 1, 2]], DONOR, AFTER, STEPS)
    assert best["replica"] == 2 and best["final_fitness"] == 3.0
    assert [seg["replica"] for seg in best["lineage"]] == [0, 2, 2]
    assert [seg["from_step"] for seg in best["lineage"]] == [0, 10, 20]
    assert best["schedule"] == {"steps": [10, 20], "lam": [1.2, 2.0]}
