"""A small progress bar for the host loop (stderr; one line, redrawn on a terminal)."""

from __future__ import annotations

import sys
import time


class Progress:
    """``Progress(total)``; call ``update(done, **values)`` after each chunk and ``close()`` at the end.

    On a terminal the line is redrawn in place; elsewhere (logs, CI) a line is
    printed at most every ``min_interval`` seconds. A value of None (not known
    yet) shows as ``–``; a NaN or ±inf value shows as such. The ETA is measured
    from the first update on (the first chunk, after compiling and restoring),
    at the pace of the steps done since: ``–`` until a second update.
    """

    def __init__(self, total: int, *, label: str = "steps", enabled: bool = True, stream=None,
                 min_interval: float = 10.0):
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.min_interval = 0.1 if self.tty else min_interval
        self.start = time.perf_counter()
        self.last = -float("inf")
        self.first = None  # (time, done) of the first update: the ETA's origin

    def update(self, done: int, **values) -> None:
        now = time.perf_counter()
        if self.first is None and self.enabled:
            self.first = (now, done)
        if not self.enabled or (now - self.last < self.min_interval and done < self.total):
            return
        self.last = now
        elapsed = now - self.start
        frac = done / self.total if self.total else 1.0
        if self.first is None:
            self.first = (now, done)
        t0, done0 = self.first
        eta = f"{(now - t0) / (done - done0) * (self.total - done):.1f}s" if done > done0 else "–"
        bar = "#" * int(24 * frac) + "-" * (24 - int(24 * frac))
        extra = "  ".join(f"{k} {_shown(v)}" for k, v in values.items())
        line = f"[{bar}] {done}/{self.total} {self.label}  {elapsed:.1f}s  eta {eta}  {extra}"
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _shown(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"
