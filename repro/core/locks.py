"""One writer at a time: an OS file lock (``fcntl.flock``) on a lock file, held while a process
writes a run folder, an export or a feature-cache entry.

The OS drops the lock of a process however it ends (exit, exception, ``kill -9``), so a lock is
never left held by a process that is gone. While held, the lock file names its holder (pid,
host and command line) for the one-line message another writer gets. The holder deletes the
file when it lets go; a taker that locked a file deleted under it in between takes the lock
again on the file now at that path, so two processes never both hold one path's lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import socket
import sys
import threading
from pathlib import Path

from repro.core.errors import ReproError

#: The lock file of a folder that has one writer (a run folder, an export).
LOCK_FILE = ".lock"

#: (lock path, thread id) -> how many bodies hold it: the locks this process holds, so that a
#: function that takes its folder's lock may call another that takes it too
#: (train_and_evaluate -> train).
_HELD: dict = {}


def holder_record() -> bytes:
    """What the lock file says about this process: one JSON line, pid, host and command."""
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    command = shlex.join(argv).replace("\n", " ")
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "command": command[:300]}).encode() + b"\n"


def describe_holder(data: bytes) -> str:
    """'pid 123 on host-a: python -m repro train --out runs/x', from a lock file's bytes (the
    holder may not have written them yet: then it says so)."""
    try:
        holder = json.loads(data.decode("utf-8"))
        return f"pid {holder['pid']} on {holder['host']}: {holder['command']}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not written its name into the lock file yet"


def _is_current(fd: int, path: Path) -> bool:
    """Is the file open as ``fd`` still the one at ``path`` (not deleted by a previous holder)?"""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)


def _lock_fd(path: Path, busy, wait) -> int:
    """An open fd of ``path`` holding its exclusive lock. When another process holds it:
    ``wait`` None raises ``ReproError(busy(holder))``; else ``wait(holder)`` is called and the
    lock waited for (again for each new lock file a previous holder left in its place)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = describe_holder(os.pread(fd, 4096, 0))
                if wait is None:
                    raise ReproError(busy(holder)) from None
                wait(holder)
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _is_current(fd, path):
                os.ftruncate(fd, 0)
                os.pwrite(fd, holder_record(), 0)
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


@contextlib.contextmanager
def exclusive(path: Path, busy, wait=None):
    """Hold the lock of the lock file ``path`` while the body runs; this thread may take it
    again inside (it is then held until the outermost body ends).

    ``busy(holder) -> str``: the one-line error when another process (or thread) holds it;
    ``wait(holder)``: instead of that error, called (to say whom it waits for), then the lock
    is waited for.
    """
    path = Path(path).parent.resolve() / Path(path).name
    key = (path, threading.get_ident())
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    fd = _lock_fd(path, busy, wait)
    _HELD[key] = 1
    try:
        yield
    finally:
        del _HELD[key]
        if _is_current(fd, path):  # deleted while still held: the next taker makes a new one
            path.unlink()
        os.close(fd)


def folder_writer(folder: Path, what: str = ""):
    """The lock of ``folder``'s one writer (``folder/.lock``; the folder is made if missing):
    a second writer gets a one-line :class:`ReproError` naming the folder and the holder.
    ``what``: the option the folder came from (e.g. ``--out``), for the message."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{what} {folder}" if what else str(folder)
    return exclusive(folder / LOCK_FILE, lambda holder: (
        f"{name}: being written by another process ({holder}); one writer per folder: wait "
        "for it to end, or write elsewhere"))
