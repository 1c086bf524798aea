"""benchmarks/accelerator.py --quick writes every section, and report.py renders it faithfully.

Not a timed test: the figures of a --quick run mean nothing; what is checked is that every
section ran (or says why it did not), that the JSON is strict, and that report.py's tables show
the run's own numbers and ratios. One subprocess of about a minute and a half on two loaded cores
(with JAX's optimisations mostly off, as in the rest of the suite).
"""

import importlib.util
import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
SECTIONS = ("scaling", "peers", "lambda_rules", "lean_step", "pbt", "memory")

pytestmark = pytest.mark.slow  # every test reads one --quick benchmark run of about a minute and a half


def _strict(text):
    def refuse(name):
        raise ValueError(f"{name} in the JSON: not strict")

    return json.loads(text, parse_constant=refuse)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _row(markdown: str, first_cell: str, column: str) -> str:
    """The cell in ``column`` of the table row whose first cell is ``first_cell`` (the first such table)."""
    header = None
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if column in cells:
            header = cells
        elif header is not None and cells[0] == first_cell:
            return cells[header.index(column)]
    raise AssertionError(f"no row {first_cell!r} under a column {column!r}")


@pytest.fixture(scope="module")
def quick_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("accelerator") / "quick.json"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1",
           "PYTHONPATH": os.pathsep.join([str(BENCHMARKS.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "accelerator.py", "--quick", "--data-dir", str(data_dir), "--out", str(out)],
                          cwd=BENCHMARKS, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, _strict(out.read_text())


def test_every_section_is_measured_or_says_why(quick_run):
    _, data = quick_run
    assert data["quick"] is True and data["backend"] == "cpu"
    assert data["machine"] and data["date"] and data["jax"]
    assert set(data["sections"]) == set(SECTIONS)
    for name, section in data["sections"].items():
        assert "error" not in section and "skipped" not in section, (name, section)
        assert _number(section["wall_s"]) and _number(section["budget_s"]), name

    scaling = data["sections"]["scaling"]
    assert [r["seeds"] for r in scaling["rows"]] == scaling["seeds_requested"] == [1, 2]
    for r in scaling["rows"]:
        assert r["replica_loop"] == "map"  # auto on one CPU device
        for key in ("ms_per_step", "us_per_seed_step", "gflop_per_step", "gflops", "gb_per_s", "compiled_bytes"):
            assert _number(r[key]) and r[key] > 0, key
    assert scaling["complete"] and scaling["stopped"] is None and _number(scaling["matmul_gflops"])
    for run in scaling["extrapolated_15_epochs"]:  # 30 and 1,000 seeds: not in a quick run, and it says so
        assert run["seconds"] is None and "not among the measured" in run["reason"]

    peers = data["sections"]["peers"]
    for name in ("d", "e", "e_vmap", "e'"):  # e is map (auto on one CPU device); e_vmap the other loop
        assert _number(peers["ms_per_step"][name]), name
    assert peers["replica_loop"]["e"] == "map" and peers["replica_loop"]["e_vmap"] == "vmap"
    if importlib.util.find_spec("torch") is None:  # the dev extra installs torch; without it, the reason
        assert all("torch is not installed" in peers["not_measured"][name] for name in ("a", "b", "c"))
    else:
        assert all(_number(peers["ms_per_step"][name]) for name in ("a", "b", "c"))
        assert peers["a_extrapolated"] is True and peers["not_measured"] == {}

    rules = data["sections"]["lambda_rules"]
    assert set(rules["ms_per_step"]) == {"fixed", "device", "host", "statsmodels, refit 1", "statsmodels, refit 2"}
    assert all(_number(v) for v in rules["ms_per_step"].values()) and rules["not_measured"] == {}
    assert _number(rules["statsmodels_refit1_full_run_s_extrapolated"])

    lean = data["sections"]["lean_step"]
    for key in ("ratio_bytes", "ratio_flops", "ratio_time"):
        assert _number(lean[key]) and lean[key] > 0, key

    pbt = data["sections"]["pbt"]
    assert (pbt["populations"], pbt["members"], pbt["replicas"]) == (2, 2, 4) and pbt["epoch_extrapolated"]
    for key in ("round", "elbo_fitness", "fid_fitness", "chunk", "epoch"):
        assert _number(pbt["ms"][key]) and pbt["ms"][key] > 0, key

    memory = data["sections"]["memory"]
    assert [r["seeds"] for r in memory["rows"]] == [1, 2]
    assert all(_number(r["compiled_bytes"]) for r in memory["rows"])
    assert memory["peak_bytes_in_use"] is None and "no memory statistics" in memory["device_reason"]


def test_report_renders_the_runs_own_numbers(quick_run, tmp_path):
    path, data = quick_run
    md = tmp_path / "tables.md"
    proc = subprocess.run([sys.executable, "report.py", str(path), "--out", str(md)], cwd=BENCHMARKS,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = md.read_text()
    for title in ("### Scaling over seeds", "### Peers", "### What the λ rules cost",
                  "### The library's step against a bare one", "### What population-based training costs",
                  "### Memory"):
        assert title in text
    assert text.count("Measured on " + data["machine"]) == 6 and data["date"][:10] in text
    assert "quick" in text

    ms = data["sections"]["peers"]["ms_per_step"]
    # the tables print ratios to 2 decimals: half the last digit
    assert float(_row(text, "(d)", "× (e)")) == pytest.approx(ms["d"] / ms["e"], abs=0.005)
    assert float(_row(text, "(e_vmap)", "× (d)")) == pytest.approx(ms["e_vmap"] / ms["d"], abs=0.005)
    rules = data["sections"]["lambda_rules"]["ms_per_step"]
    assert float(_row(text, "host", "× device")) == pytest.approx(rules["host"] / rules["device"], abs=0.005)
    lean = data["sections"]["lean_step"]
    assert float(_row(text, "library / bare", "GB accessed per sweep step")) == pytest.approx(lean["ratio_bytes"],
                                                                                          abs=0.005)
    pbt = data["sections"]["pbt"]["ms"]
    assert _row(text, "fid fitness", "% of an epoch") == f"{100 * pbt['fid_fitness'] / pbt['epoch']:,.2f}"
    # what a quick run cannot measure shows as such
    assert "15 epochs of 30 seeds: not measured" in text and "Device memory: not measured" in text


def test_report_marks_a_missing_section(quick_run, tmp_path):
    path, data = quick_run
    data = {**data, "sections": {k: v for k, v in data["sections"].items() if k != "peers"}}
    data["sections"]["lean_step"] = {"skipped": "not requested (--sections)", "wall_s": 0.0, "budget_s": 0.0}
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(data))
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import report
    finally:
        sys.path.remove(str(BENCHMARKS))
    text = report.render([(str(partial), report.load(partial))])
    assert "not measured: this file has no such section" in text
    assert "not measured: not requested (--sections)" in text
    bad = tmp_path / "nan.json"
    bad.write_text('{"sections": {"scaling": {"matmul_gflops": NaN}}}')
    with pytest.raises(ValueError, match="not strict"):
        report.load(bad)
