"""The Table type of ``paper_tables/``: typed cells, written as Markdown, CSV and a schema entry
(:mod:`repro.report.schema`) that lets ``python -m repro compare`` test every cell by its kind.

Cells (:mod:`repro.report.cells`) are Python values whose type says what they are: a mean ± std
over n seeds, a paired difference with its verdict, an interval, "k/n" counts, one value per
seed, a float (a single number, or one seed's value in a column that a :attr:`Table.derived`
summary is computed from), or a string (a label, or "not run" / "n/a"). Paired differences
are estimates (:class:`~repro.scoring.stats.Estimate`) with no verdict; a verdict cell
(:class:`~repro.scoring.stats.Verdict`) belongs to a declared endpoint and arrives already
Holm-adjusted over the endpoints (:mod:`repro.report.endpoints`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from repro.core.fileio import atomic_write_bytes
from repro.report.cells import (DAGGER, PLATEAU_MARK_NOTE, MeanStd, column_kind, csv_cells, csv_names,
                                md_cells, md_names)
from repro.scoring.stats import ESTIMATE_DRAWS, Estimate, Verdict


class Table:
    """A titled table with a caption and footnotes, written as ``name.md`` and ``name.csv``.

    ``labels``: how many leading columns key a row. ``derived`` / ``differences`` /
    ``intervals`` declare how cells of one row follow from each other (see :mod:`repro.report.schema`)
    so that compare can check a file for consistency."""

    def __init__(self, name: str, title: str, caption: str, header: list[str], labels: int = 1):
        self.name, self.title, self.caption, self.header = name, title, caption, header
        self.labels = labels
        self.rows: list[list] = []
        self.notes: list[str] = []
        self.derived: dict[str, list[str]] = {}
        self.differences: dict[str, tuple[str, str]] = {}
        self.intervals: dict[str, str] = {}
        self._estimates: dict = {}  # typed key (e.g. Difference) -> (row, column)

    def add(self, row: list, estimates: dict | None = None) -> None:
        """Append ``row``; ``estimates``: column name -> the typed key (a
        :class:`~repro.report.common.Difference`) its cell estimates, for :meth:`estimates`."""
        assert len(row) == len(self.header), (self.name, row)
        for column, key in (estimates or {}).items():
            if key in self._estimates:
                raise ValueError(f"{self.name}: {key} is in the table twice")
            self._estimates[key] = (len(self.rows), self.header.index(column))
        self.rows.append(row)

    def estimates(self) -> dict:
        """Typed key -> its cell (what the findings quote)."""
        return {key: self.rows[i][j] for key, (i, j) in self._estimates.items()}

    def verdict_columns(self) -> list[int]:
        """The columns holding verdict cells: one Holm family (the declared endpoints)."""
        return [j for j in range(len(self.header))
                if any(isinstance(r[j], Verdict) for r in self.rows)]

    def family_caption(self) -> str:
        """The caption sentence on the table's estimates, from its own cells."""
        cells = [c for r in self.rows for c in r if isinstance(c, Estimate)]
        if not cells or self.verdict_columns():  # Table 0 says its own rule
            return ""
        ns = sorted({c.n for c in cells})
        n_text = f"{ns[0]} seeds" if len(ns) == 1 else f"{ns[0]}-{ns[-1]} seeds"
        crossed = [c for c in cells if c.items]
        if len(crossed) == len(cells):
            how = (f"paired by seed and test item ({n_text}), with a 95% crossed bootstrap "
                   f"interval ({ESTIMATE_DRAWS:,} resamples of seeds and of test items, the "
                   "same draw for both arms)")
        elif not crossed:
            how = f"paired by seed ({n_text}), with a 95% t-interval over seeds"
        else:
            how = (f"paired by seed ({n_text}) and, where the cell has per-item results, by "
                   "test item, with a 95% crossed bootstrap interval there, else the "
                   "t-interval over seeds")
        return (f" Differences are {how}. They "
                "are estimates: no verdict words here; 'higher' / 'lower' belong to the "
                "declared endpoints (Table 0).")

    # --------------------------------------------------------------- output

    def _kinds(self) -> list[str]:
        per_seed = {c for cols in self.derived.values() for c in cols}
        return ["label" if j < self.labels else
                column_kind([r[j] for r in self.rows], self.header[j] in per_seed)
                for j in range(len(self.header))]

    def markdown(self) -> str:
        kinds = self._kinds()
        names = [n for h, k in zip(self.header, kinds) for n in md_names(h, k)]
        lines = [f"### {self.title}", "", self.caption + self.family_caption(), "",
                 "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        for row in self.rows:
            cells = [x for c, h, k in zip(row, self.header, kinds)
                     for x in md_cells(c, len(md_names(h, k)))]
            lines.append("| " + " | ".join(cells) + " |")
        notes = self.shown_notes()
        if notes:
            lines += [""] + [f"- {n}" for n in notes]
        return "\n".join(lines) + "\n"

    def shown_notes(self) -> list[str]:
        """The notes, less the plateau footnote when no header or cell carries its mark."""
        marked = any(DAGGER in str(x) for x in self.header) or any(
            DAGGER in str(c) for r in self.rows for c in r)
        return [n for n in self.notes if marked or not n.startswith(PLATEAU_MARK_NOTE)]

    def csv_rows(self) -> list[list[str]]:
        kinds = self._kinds()
        out = [[n for h, k in zip(self.header, kinds) for n in csv_names(h, k)]]
        for row in self.rows:
            out.append([x for c, h, k in zip(row, self.header, kinds)
                        for x in csv_cells(c, len(csv_names(h, k)))])
        return out

    def schema(self) -> dict:
        """This table's entry of ``tables.json`` (:mod:`repro.report.schema`)."""
        kinds = self._kinds()
        columns = []
        for j, (h, k) in enumerate(zip(self.header, kinds)):
            n = [c.n if isinstance(c, (MeanStd, Estimate)) else None for c in (r[j] for r in self.rows)]
            columns.append({"name": h, "kind": k, "csv": csv_names(h, k),
                            "n": n if any(x is not None for x in n) else None})
        return {"labels": [n for h, k in zip(self.header[:self.labels], kinds) for n in
                           csv_names(h, k)],
                "columns": columns, "derived": self.derived,
                "differences": {k: list(v) for k, v in self.differences.items()},
                "intervals": self.intervals,
                "family": [self.header[j] for j in self.verdict_columns()]}

    def write(self, out: Path) -> list[str]:
        atomic_write_bytes(out / f"{self.name}.md", self.markdown().encode())
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(self.csv_rows())
        atomic_write_bytes(out / f"{self.name}.csv", buf.getvalue().encode())
        return [f"{self.name}.md", f"{self.name}.csv"]


def mean_std(values):
    """:class:`MeanStd` of per-seed values; the cell "not run" when there are none."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return "not run"
    return MeanStd(float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size))
