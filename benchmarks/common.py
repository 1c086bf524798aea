"""What every benchmark prints: the machine, medians, ratios; results appended to a JSON file."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import statistics
import time

import jax


def machine() -> str:
    """The accelerator (or CPU model) and core count, as measured on."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        model = platform.processor() or "cpu"
        try:
            for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        return f"CPU {model}, {os.cpu_count()} cores (jax {jax.__version__})"
    return f"{jax.device_count()} x {device.device_kind} (jax {jax.__version__})"


def median_ms(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in ms (``fn`` must block until its work is done)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def write(path, record: dict) -> None:
    """Append ``record`` (with the machine and date) to the JSON list in ``path``."""
    if path is None:
        return
    path = pathlib.Path(path)
    records = json.loads(path.read_text()) if path.exists() else []
    records.append({"machine": machine(), "date": datetime.date.today().isoformat(), **record})
    path.write_text(json.dumps(records, indent=2) + "\n")
