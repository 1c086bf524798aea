"""One writer per run folder: an advisory lock on ``<out>/.lock`` (``fcntl.flock``).

The kernel drops the lock when its process ends, however it ends (SIGKILL,
a crash, a lost machine), so a killed run never leaves it stuck; the file
itself stays and says who held it last. The holder writes its pid, host, start
time and command into the file, so a second writer can name it. Only the
primary process of a multi-process run takes the lock; the others write
nothing into ``out`` and share it.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import pathlib
import socket
import sys

from jaxwvae.errors import UserError

LOCK = ".lock"


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode(errors="replace").strip()
    return " ".join(text.split()) or "another process"


def _refuse(out: pathlib.Path, holder: str):
    raise UserError(f"--out {out} is in use by a live run ({holder}); wait for it to end or stop it, "
                    f"or pass another --out")


def check_free(out) -> None:
    """Refuse an ``out`` whose lock a live process holds, without writing anything."""
    path = pathlib.Path(out) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # no lock file (or unreadable): nothing holds this folder that we can see
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: two probes never refuse each other
    except BlockingIOError:
        _refuse(pathlib.Path(out), _holder(fd))
    finally:
        os.close(fd)  # closing drops a lock taken here


class RunLock:
    """``RunLock(out)`` holds ``out`` until :meth:`release` (or the process's end); a holder is a UserError."""

    def __init__(self, out, command: list[str] | None = None):
        self.out = pathlib.Path(out)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"--out {self.out}: cannot write there ({e.strerror or e}); "
                            f"pass a folder you can write") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            _refuse(self.out, holder)
        self.fd = fd
        command = sys.argv if command is None else command
        since = datetime.datetime.now().isoformat(timespec="seconds")
        text = f"pid {os.getpid()} on {socket.gethostname()} since {since}: {' '.join(map(str, command))}\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
