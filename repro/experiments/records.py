"""Run records: what ``paper_tables/runs/`` keeps of every run of the grid, so that every table
and figure can be recomputed without training and any single seed inspected.

A record is the run's folder without its weights, laid out as ``runs/`` is
(``<profile>/<tower>/<arm>/seed<k>/``):

* :data:`COMPARED` files, bit-reproducible on one machine: ``config.json``, ``metrics.json``,
  ``log.jsonl`` (the epoch log without its per-epoch seconds), ``test_ranks.json`` (per-query
  test ranks) and, for the runs the report analyses, ``analysis.json``
  (:mod:`repro.report.analysis`);
* ``provenance.json``: the commit that trained it, the CPU model and its seconds (not compared).

``reproduce`` writes a record for every run it trained or reused; ``reproduce --sample``
retrains a declared sample (:func:`sample_keys`) and checks it against the records
(:func:`differences`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from repro.core.errors import ReproError
from repro.core.fileio import atomic_write_bytes
from repro.report.analysis import ANALYSIS_FILE
from repro.training.evaluation import RANKS_FILE
from repro.training.trainer import PROVENANCE_FILE

#: The files of a record that must be byte-identical when the run is retrained on a machine
#: of the same numerics (``metrics.json``'s ``numerics``).
COMPARED = ("config.json", "metrics.json", "log.jsonl", RANKS_FILE, ANALYSIS_FILE)
#: Files a record may lack: only the runs the report analyses have an analysis.
OPTIONAL = (ANALYSIS_FILE,)


def _log_without_seconds(data: bytes) -> bytes:
    """``log.jsonl`` without each epoch's wall seconds (the only field that is not bits)."""
    lines = [json.loads(line) for line in data.decode().splitlines()]
    return b"".join(json.dumps({k: v for k, v in e.items() if k != "seconds"}).encode() + b"\n"
                    for e in lines)


def compared_files(run_dir: Path) -> dict[str, bytes]:
    """name -> bytes of the :data:`COMPARED` files of a finished run (or of a record)."""
    out = {}
    for name in COMPARED:
        path = Path(run_dir) / name
        if not path.is_file():
            if name in OPTIONAL:
                continue
            raise ReproError(f"{run_dir}: no {name} (not a finished run of this version)")
        data = path.read_bytes()
        out[name] = _log_without_seconds(data) if name == "log.jsonl" else data
    return out


def write_record(run_dir: Path, dest: Path) -> None:
    """Make ``dest`` the record of the finished run in ``run_dir``: written in a sibling
    folder, then swapped in, so that a reader never sees half a record."""
    files = compared_files(run_dir)
    prov = Path(run_dir) / PROVENANCE_FILE
    files[PROVENANCE_FILE] = (prov.read_bytes() if prov.is_file()
                              else b'{\n "commit": "unknown"\n}')
    if dest.is_dir() and {p.name: p.read_bytes() for p in dest.iterdir()} == files:
        return
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, data in files.items():
        atomic_write_bytes(tmp / name, data)
    old = dest.with_name(dest.name + ".old")
    if dest.exists():
        dest.replace(old)
    tmp.replace(dest)
    shutil.rmtree(old, ignore_errors=True)


def differences(run_dir: Path, record: Path) -> list[str]:
    """The :data:`COMPARED` files whose bytes differ between a retrained run and its record
    (a file only one of them has counts as different)."""
    if not record.is_dir():
        return ["no record"]
    new, old = compared_files(run_dir), compared_files(record)
    return sorted(n for n in set(new) | set(old) if new.get(n) != old.get(n))


def same_numerics(run_dir: Path, record: Path) -> bool:
    """Whether the two ran on the same numerics (CPU, kernels, libraries, pins): only then are
    their bits comparable."""
    def numerics(folder):
        return json.loads((folder / "metrics.json").read_text()).get("numerics")
    return numerics(run_dir) == numerics(record)


def provenance(record: Path) -> dict:
    path = record / PROVENANCE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise ReproError(f"{path}: missing or unreadable") from None


def remove_stale(root: Path, keep: set) -> list[Path]:
    """Delete the record folders under ``root`` that are not in ``keep`` (runs no longer in
    the grid); returns them."""
    gone = [p.parent for p in root.rglob("config.json") if p.parent not in keep]
    for folder in gone:
        shutil.rmtree(folder)
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    return gone


def sample_keys(planned: dict, commit: str) -> set:
    """CI's declared sample of the grid: every distinct configuration (``planned``: the key
    that trains each, in grid order, -> its seeds' keys) at its first seed, plus one further
    seed per (tower, arm), chosen from the commit hash, so that over commits every record is
    retrained."""
    out = set()
    for keys in planned.values():
        keys = sorted(keys, key=lambda k: k.seed)
        out.add(keys[0])
        if len(keys) > 1:
            h = hashlib.sha256(f"{commit}/{keys[0].tower}/{keys[0].arm.name}".encode()).digest()
            out.add(keys[1 + int.from_bytes(h[:8], "big") % (len(keys) - 1)])
    return out
