"""Every JSON file the project writes is strict JSON: NaN and ±inf are written as null and read back as NaN."""

import os
import stat
import json
import math

import numpy as np
import pytest

from jaxwvae import config as config_lib
from jaxwvae.engine import sweep
from jaxwvae.evaluation import replica_fid
from jaxwvae.reports.shared import mean_sd
from jaxwvae.runs import rundir


def _reject(constant):
    raise ValueError(f"non-standard JSON constant {constant}")


def strict_loads(text):
    return json.loads(text, parse_constant=_reject)


def test_write_json_writes_null_for_every_non_finite_number(tmp_path):
    value = {"nan": float("nan"), "inf": [float("inf"), -np.inf], "np": np.float32("nan"), "ok": np.float64(1.5),
             "nested": {"t": (np.int64(3), np.bool_(True), None, "NaN")}}
    rundir.write_json(tmp_path / "x.json", value)
    text = (tmp_path / "x.json").read_text()
    with pytest.raises(ValueError, match="NaN"):
        strict_loads(json.dumps(float("nan")))  # the strict parser does reject what allow_nan=True writes
    assert strict_loads(text) == {"nan": None, "inf": [None, None], "np": None, "ok": 1.5,
                                  "nested": {"t": [3, True, None, "NaN"]}}


@pytest.mark.slow  # sweep.run end to end, and resumed
def test_a_sweep_writes_only_strict_json_and_reads_null_back(data_dir, tmp_path):
    config = config_lib.SweepConfig(seeds=(0, 1), epochs=1, train_size=1000, test_size=500, hidden=(32, 16),
                                    latent_dim=4, steps_per_call=5, checkpoint_every=5, data_dir=str(data_dir))
    sweep.run(config, tmp_path, progress=False)
    files = sorted(tmp_path.rglob("*.json"))
    assert {"config.json", "results.json", "jaxwvae-files.json"} <= {p.name for p in files}
    for path in files:
        strict_loads(path.read_text())
    # A diverged seed's metrics would be NaN: written as null, read back as NaN by the resume path.
    results = strict_loads((tmp_path / "results.json").read_text())
    results["runs"][1]["loss"] = None
    rundir.write_json(tmp_path / "results.json", results)
    again = sweep.run(None, tmp_path, resume=True, progress=False)  # finished: read, not trained
    assert math.isnan(again["runs"][1]["loss"]) and again["runs"][0]["loss"] == results["runs"][0]["loss"]
    assert again["runs"][0]["diverged_step"] is None  # null where None is the value, not a number


def test_fid_cache_with_null_reads_as_nan(tmp_path):
    rundir.write_json(tmp_path / "fid_x.json", {"n": 5, "features": "x", "seeds": [0, 1], "fid": [12.5, float("nan")]})
    strict_loads((tmp_path / "fid_x.json").read_text())
    fids = replica_fid.replica_fids(tmp_path, None, "x", None, n=5)
    assert fids[0] == 12.5 and math.isnan(fids[1])
    assert mean_sd(fids) == (12.5, 0.0, 1)  # a null FID is left out like a NaN one


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        rundir.write_json(tmp_path / "results.json", {"a": 1})
        rundir.write_npz(tmp_path / "history.npz", x=np.zeros(2))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "results.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "history.npz").stat().st_mode) == mode
