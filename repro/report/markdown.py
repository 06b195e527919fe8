"""Is every Markdown table of a ``paper_tables/`` folder its CSV, as a reader sees it?

The writer renders each table twice from the same cells: ``name.csv`` at full precision and
``name.md`` rounded for reading. :func:`markdown_problems` renders the Markdown cells again
from the CSV (:func:`repro.report.cells.cell_of_csv`) and compares them with the table in
``name.md``: the header and every label and text cell must be equal; every printed number must
equal the CSV's to within one unit of its last printed digit (the CSV is itself rounded, so a
number may be rendered a digit apart from the writer's). An edit a reader would see fails."""

from __future__ import annotations

import re
from pathlib import Path

from repro.report.cells import cell_of_csv, md_cells, md_names
from repro.report.folder import Folder

_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?")


def markdown_problems(folder: Folder) -> list[str]:
    """One line per Markdown table of ``folder`` that is missing, malformed, or shows a header,
    cell or number that its CSV does not hold."""
    problems = []
    for name, entry in folder.schema.items():
        md = folder.path / (Path(name).stem + ".md")
        if not md.is_file():
            problems.append(f"{md.name}: missing (the Markdown of {name})")
            continue
        problems += _table_problems(md, entry, folder.tables[name])
    return problems


def _table_problems(md: Path, entry: dict, rows: dict) -> list[str]:
    try:
        shown = _markdown_table(md.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return [f"{md.name}: {exc}"]
    columns = entry["columns"]
    header = [n for col in columns for n in md_names(col["name"], col["kind"])]
    if shown[0] != header:
        return [f"{md.name}: header differs from {md.stem}.csv's columns"]
    if len(shown) - 1 != len(rows):
        return [f"{md.name}: {len(shown) - 1} rows, {md.stem}.csv has {len(rows)}"]
    problems = []
    for line, (key, row) in zip(shown[1:], rows.items()):
        try:
            expected = [(col["kind"], text) for col in columns
                        for text in md_cells(cell_of_csv(col["kind"], row[col["name"]][0]),
                                             len(md_names(col["name"], col["kind"])))]
        except ValueError:  # a CSV cell that is not its kind: the cell checks name it
            continue
        if len(line) != len(expected):
            problems.append(f"{md.name}: row {' / '.join(key)!r} has {len(line)} cells, "
                            f"the header {len(expected)}")
            continue
        for name, (kind, want), got in zip(header, expected, line):
            if not _same(kind, want, got):
                problems.append(f"{md.name}: row {' / '.join(key)!r}, column {name!r} shows "
                                f"{got!r}, its CSV {want!r}")
    return problems


def _markdown_table(text: str) -> list[list[str]]:
    """The header and rows (lists of cell texts) of the one table of a Markdown file."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines)
              if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---")]
    if len(starts) != 1:
        raise ValueError(f"{len(starts)} tables, expected one")
    table = [lines[starts[0]]]
    for line in lines[starts[0] + 2:]:
        if not line.startswith("|"):
            break
        table.append(line)
    for line in table:
        if not (line.startswith("| ") and line.endswith(" |")):
            raise ValueError(f"a table line is not '| ... |': {line[:60]!r}")
    return [line[2:-2].split(" | ") for line in table]


def _same(kind: str, want: str, got: str) -> bool:
    if want == got:
        return True
    if kind in ("label", "text"):
        return False
    want_numbers, got_numbers = _NUMBER.findall(want), _NUMBER.findall(got)
    if _NUMBER.sub("#", want) != _NUMBER.sub("#", got) or len(want_numbers) != len(got_numbers):
        return False
    return all(abs(float(w) - float(g)) <= _last_digit(g) * 1.0001
               for w, g in zip(want_numbers, got_numbers))


def _last_digit(number: str) -> float:
    """One unit of the last printed digit: '13.4' -> 0.1, '4.6e-05' -> 1e-06, '1' -> 1."""
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)
