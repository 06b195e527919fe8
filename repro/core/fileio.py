"""Files written once and checked: atomic writes and sha256 sums. The lowest layer that
touches the disk; every module that writes an output uses it."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tempfile
from pathlib import Path

from repro.core.errors import ReproError


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never half-written."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write(path: Path, write) -> None:
    """Stream into ``path``: ``write(f)`` fills a temporary binary file beside it, which is
    then renamed (never half-written, and no copy of the content is held in memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def git_commit(cwd=None, short: bool = False) -> str:
    """The commit checked out at ``cwd`` (default: this process's folder), "+dirty" when
    tracked files differ from it; "unknown" without git or a repository."""
    try:
        commit = subprocess.run(["git", "rev-parse", *(["--short"] if short else []), "HEAD"],
                                capture_output=True, text=True, check=True, cwd=cwd).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, cwd=cwd).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def save_png(fig, path: Path) -> None:
    """A matplotlib figure as PNG bytes without a timestamp, written atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())


def writable_dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a folder this process writes into, or None: checked
    before any work starts, so that a bad output path fails in a second, not after minutes."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        return "exists and is not a folder"
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    try:  # a real file, not os.access: root passes that check where it cannot write (/proc)
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        return f"{probe} is not writable ({exc.strerror})"
    return None


def folder_problem(path: Path) -> str | None:
    """Why ``path`` is not an existing folder, or None."""
    if Path(path).is_dir():
        return None
    return "is a file, not a folder" if Path(path).exists() else "no such folder"


def file_problem(path: Path) -> str | None:
    """Why ``path`` is not an existing file, or None."""
    if Path(path).is_file():
        return None
    return "is a folder, not a file" if Path(path).is_dir() else "no such file"


def existing_folder(path, option: str = "") -> Path:
    """``path`` if it is a folder, else a one-line :class:`ReproError` naming ``option`` (e.g.
    ``--run``; none for a positional argument), the path and why."""
    problem = folder_problem(Path(path))
    if problem:
        raise ReproError(f"{_named(path, option)}: {problem}")
    return Path(path)


def existing_file(path, option: str = "") -> Path:
    """``path`` if it is a file, else a one-line :class:`ReproError` naming ``option``, the
    path and why."""
    problem = file_problem(Path(path))
    if problem:
        raise ReproError(f"{_named(path, option)}: {problem}")
    return Path(path)


def _named(path, option: str) -> str:
    return f"{option} {path}" if option else str(path)


def output_dir(path: str, option: str) -> Path:
    """``path`` as a folder a command may write into, else a one-line :class:`ReproError`
    naming ``option`` (e.g. ``--out``)."""
    problem = writable_dir_problem(Path(path))
    if problem:
        raise ReproError(f"{option} {path}: {problem}")
    return Path(path)
