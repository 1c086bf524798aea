"""The progress line: a value not known yet shows as "–", never as nan; a diverged run's nan still shows."""

import io
import warnings

import numpy as np

from jaxwvae.engine.history import History
from jaxwvae.runs.progress import Progress


def lines(updates, total=10):
    stream = io.StringIO()  # not a terminal: one line per update (min_interval 0)
    bar = Progress(total, stream=stream, min_interval=0.0)
    for done, values in updates:
        bar.update(done, **values)
    bar.close()
    return stream.getvalue().splitlines()


def test_a_value_not_known_yet_shows_as_a_dash():
    first, second, diverged, last = lines([(0, {"loss": None}), (2, {"loss": 101.5}), (4, {"loss": float("nan")}),
                                           (10, {"loss": float("inf")})])
    assert "nan" not in first and first.endswith("eta –  loss –")
    assert "nan" not in second and second.endswith("loss 101.5") and "eta –" not in second
    assert diverged.endswith("loss nan")  # every replica diverged: the median is NaN, and says so
    assert last.endswith("loss inf") and last.startswith("[" + "#" * 24 + "] 10/10 steps")


def test_the_sweep_passes_no_loss_before_the_first_chunk_is_recorded():
    # The sweep reports the median loss of the last recorded step; with lambda on the device the first chunk's
    # metrics are still in flight at the first update, so nothing is recorded yet (step 0).
    history = History(["loss"], replicas=4, steps=3)
    assert history.last_median("loss", 0, 3) is None
    history.record(0, {"loss": np.array([[1.0, 2.0], [3.0, np.nan], [np.nan, np.nan], [9.0, 100.0]], np.float32)})
    assert history.last_median("loss", 1, 3) == 2.0  # replicas 0 and 1 (2 has diverged; 3 is padding, not counted)
    assert history.last_median("loss", 2, 3) == 2.0  # replica 0 alone
    history.arrays["loss"][:, 2] = np.nan
    with warnings.catch_warnings():  # numpy warns on an all-NaN median; the NaN itself is what is tested
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        assert np.isnan(history.last_median("loss", 3, 3))  # every real replica diverged
