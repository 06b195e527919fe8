"""Reading a ``paper_tables/`` folder for :mod:`repro.report.compare`: the schema, every CSV
table it describes, and the sha256 of every file its writer recorded (so that a file edited
afterwards is found)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from repro.core.errors import ReproError
from repro.core.fileio import sha256_file
from repro.report.schema import FILE


@dataclass
class Folder:
    path: Path
    schema: dict
    tables: dict = field(default_factory=dict)  # csv name -> {row key: {column: [cells]}}
    files: dict = field(default_factory=dict)   # file name -> the sha256 its writer recorded


def load_folder(path: Path) -> Folder:
    """A ``paper_tables/`` folder: its schema, every CSV table it describes (each a one-line
    error when missing or malformed), and the sha256 of every file its writer recorded."""
    if not path.is_dir():
        raise ReproError(f"{path}: no such folder")
    spec = path / FILE
    try:
        written = json.loads(spec.read_text(encoding="utf-8"))
        schema, files = written["tables"], written.get("files", {})
    except FileNotFoundError:
        raise ReproError(f"{spec}: not found (is {path} a paper_tables folder written by this "
                         "version? regenerate it with python -m repro reproduce)") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReproError(f"{spec}: unreadable ({type(exc).__name__}: {exc})") from None
    undescribed = sorted(p.name for p in path.glob("*.csv") if p.name not in schema)
    if undescribed:
        raise ReproError(f"{path / undescribed[0]}: a CSV table that {FILE} does not describe "
                         "(a leftover of an older run? remove it), so its cells cannot be "
                         "compared")
    folder = Folder(path, schema, files=files)
    for name, entry in schema.items():
        folder.tables[name] = _read_table(path / name, entry)
    return folder


def _read_table(path: Path, entry: dict) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
        lines = list(csv.reader(io.StringIO(text, newline="")))
    except FileNotFoundError:
        raise ReproError(f"{path}: missing (listed in {FILE})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ReproError(f"{path}: not a readable CSV ({type(exc).__name__})") from None
    if not lines:
        raise ReproError(f"{path}: empty (no header)")
    if not text.endswith("\n"):  # the writer ends every line
        raise ReproError(f"{path}: ends mid-line (cut?)")
    header = lines[0]
    expected = [c for col in entry["columns"] for c in col["csv"]]
    if header != expected:
        raise ReproError(f"{path}: columns differ from {FILE}")
    rows = {}
    for i, line in enumerate(lines[1:]):
        if len(line) != len(header):
            raise ReproError(f"{path}: line {i + 2} has {len(line)} cells, the header "
                             f"{len(header)} (cut or edited?)")
        cells = dict(zip(header, line))
        key = tuple(cells[c] for c in entry["labels"])
        if key in rows:
            raise ReproError(f"{path}: row {' / '.join(key)!r} appears twice")
        rows[key] = {col["name"]: ([cells[c] for c in col["csv"]],
                                   col["n"][i] if col["n"] else None)
                     for col in entry["columns"]}
    return rows


def changed_files(folder: Folder) -> list[str]:
    """The files of ``folder`` whose bytes are not those its writer recorded in the schema
    (``files``: name -> sha256): a table, figure or finding edited after it was written."""
    recorded = folder.files
    out = []
    for name, digest in sorted(recorded.items()):
        path = folder.path / name
        if not path.is_file():
            out.append(f"{name}: missing (its sha256 is recorded in {FILE})")
        elif sha256_file(path) != digest:
            out.append(f"{name}: changed after it was written (not the sha256 {FILE} records)")
    return out
