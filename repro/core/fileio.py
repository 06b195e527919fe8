"""Files written once and checked: atomic writes and sha256 sums. The lowest layer that
touches the disk; every module that writes an output uses it.

A folder whose files are written together (a run, an export) ends with ``digests.json``:
the sha256 of each of its files, written last, so that a folder that has one was finished,
and a reader checks the bytes it uses against it (:func:`verified_bytes`)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
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


def sha256_bytes(data: bytes) -> str:
    """The sha256 of ``data``, 64 hex digits."""
    return hashlib.sha256(data).hexdigest()


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


#: Where a folder whose files are written together records their sha256 (written last).
DIGESTS_FILE = "digests.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def write_digests(folder: Path, names) -> None:
    """Record the sha256 of the files ``names`` of ``folder`` in ``folder/digests.json``,
    atomically; a writer calls it after it has written every file it covers."""
    folder = Path(folder)
    _write_record(folder, {name: sha256_file(folder / name) for name in names})


def _write_record(folder: Path, digests: dict) -> None:
    atomic_write_bytes(folder / DIGESTS_FILE,
                       json.dumps({"sha256": digests}, indent=1, sort_keys=True).encode() + b"\n")


def forget_digests(folder: Path) -> None:
    """Delete ``folder/digests.json``: what a writer does before it changes a file it covers,
    so that a folder left half-rewritten never reads as finished."""
    (Path(folder) / DIGESTS_FILE).unlink(missing_ok=True)


def record_digest(folder: Path, name: str) -> None:
    """Record the sha256 of ``folder/name`` in the folder's digests, the others' kept as
    recorded (a file rewritten on purpose, e.g. ``evaluate --write``'s metrics.json)."""
    folder = Path(folder)
    _write_record(folder, {**(recorded_digests(folder) or {}), name: sha256_file(folder / name)})


def recorded_digests(folder: Path) -> dict | None:
    """name -> sha256 (64 hex digits) that ``folder/digests.json`` records; None when the
    folder has none; a one-line :class:`ReproError` naming it when it is not one (cut, edited)."""
    path = Path(folder) / DIGESTS_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        digests = json.loads(data.decode("utf-8"))["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ReproError(f"{path}: unreadable ({type(exc).__name__}: {exc}; cut or "
                         "edited?)") from None
    if not (isinstance(digests, dict)
            and all(Path(k).name == k and k not in ("", ".", "..") for k in digests)
            and all(isinstance(v, str) and _SHA256.fullmatch(v) for v in digests.values())):
        raise ReproError(f"{path}: not a digests file (file name -> sha256 of 64 hex digits "
                         "expected)")
    return digests


def _digests_of(folder: Path) -> dict:
    digests = recorded_digests(folder)
    if digests is None:
        raise ReproError(f"{folder}: no {DIGESTS_FILE} (never finished, or written by an "
                         "older version)")
    return digests


def _checked(path: Path, digests: dict) -> bytes:
    """The bytes of ``path`` when their sha256 is the one ``digests`` records for its name."""
    if path.name not in digests:
        raise ReproError(f"{path}: not covered by the {DIGESTS_FILE} beside it (written by "
                         "another version?)")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReproError(f"{path}: missing (the {DIGESTS_FILE} beside it records it)") from None
    if sha256_bytes(data) != digests[path.name]:
        raise ReproError(f"{path}: changed after it was written (its sha256 is not the one "
                         f"the {DIGESTS_FILE} beside it records)")
    return data


def verified_bytes(folder: Path, name: str) -> bytes:
    """The bytes of ``folder/name``, the very bytes checked against ``folder/digests.json``
    (read once: what is checked is what is used); a one-line :class:`ReproError` naming the
    file when they are not the ones recorded, or the folder has no digests."""
    folder = Path(folder)
    return _checked(folder / name, _digests_of(folder))


def check_digests(folder: Path, required=()) -> None:
    """Check every file that ``folder/digests.json`` records, and that it records each of
    ``required``: a one-line :class:`ReproError` naming the first file that is not the one
    written."""
    folder = Path(folder)
    digests = _digests_of(folder)
    for name in sorted(set(digests) | set(required)):
        _checked(folder / name, digests)
