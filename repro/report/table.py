"""The Table type of ``paper_tables/``: typed cells, written as Markdown, CSV and a schema entry
(:mod:`repro.report.schema`) that lets ``python -m repro compare`` test every cell by its kind.

Cells (:mod:`repro.report.cells`) are Python values whose type says what they are: a mean ± std
over n seeds, a paired difference with its verdict, an interval, "k/n" counts, one value per
seed, a float (a single number, or one seed's value in a column that a :attr:`Table.derived`
summary is computed from), or a string (a label, or "not run" / "n/a"). All paired cells of a
table form one Holm family.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from repro.core.fileio import atomic_write_bytes
from repro.report.cells import MeanStd, column_kind, csv_cells, csv_names, md_cells, md_names
from repro.scoring.stats import ALPHA, EXACT_SIGN_FLIP_MAX_N, SIGN_FLIP_DRAWS, Paired, adjust_family


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
        self._adjusted = False

    def add(self, row: list, estimates: dict | None = None) -> None:
        """Append ``row``; ``estimates``: column name -> the typed key (a
        :class:`~repro.report.common.Difference`) its cell estimates, for :meth:`estimates`."""
        assert len(row) == len(self.header), (self.name, row)
        for column, key in (estimates or {}).items():
            if key in self._estimates:
                raise ValueError(f"{self.name}: {key} is in the table twice")
            self._estimates[key] = (len(self.rows), self.header.index(column))
        self.rows.append(row)
        self._adjusted = False

    def estimates(self) -> dict:
        """Typed key -> its cell, Holm-adjusted over the table (what the findings quote)."""
        if not self._adjusted:
            self.adjust()
        return {key: self.rows[i][j] for key, (i, j) in self._estimates.items()}

    # --------------------------------------------------------------- the Holm family

    def paired_columns(self) -> list[int]:
        return [j for j in range(len(self.header))
                if any(isinstance(r[j], Paired) for r in self.rows)]

    def adjust(self) -> None:
        """Holm-adjust the p-values of every paired cell of the table as one family."""
        where = [(i, j) for j in self.paired_columns() for i, r in enumerate(self.rows)
                 if isinstance(r[j], Paired)]
        for (i, j), cell in zip(where, adjust_family([self.rows[i][j] for i, j in where])):
            self.rows[i][j] = cell
        self._adjusted = True

    def family_caption(self) -> str:
        """The caption sentence on the verdicts, from the table's own paired cells."""
        cells = [r[j] for j in self.paired_columns() for r in self.rows if isinstance(r[j], Paired)]
        if not cells:
            return ""
        ns = sorted({c.n for c in cells})
        n_text = f"n = {ns[0]} seeds" if len(ns) == 1 else f"n = {ns[0]}-{ns[-1]} seeds"
        exact = all(c.sign_flip_exact for c in cells)
        floor = f"; with n = {ns[0]} it is at least {2 / 2 ** ns[0]:.3g}" if exact else ""
        sign = ("exact over all 2^n sign patterns" if exact else
                f"exact up to n = {EXACT_SIGN_FLIP_MAX_N}, beyond a Monte Carlo estimate from "
                f"{SIGN_FLIP_DRAWS:,} seeded sign patterns")
        return (f" Differences paired by seed ({n_text}), with a 95% t-interval; p: the paired "
                f"t-test of that interval, in brackets Holm-adjusted over this table's "
                f"{len(cells)} verdicts. Verdict 'higher' / 'lower' only when the Holm-adjusted "
                f"p < {ALPHA:g}. Sign-flip p: the distribution-free two-sided permutation p, "
                f"{sign}{floor}.")

    # --------------------------------------------------------------- output

    def _kinds(self) -> list[str]:
        per_seed = {c for cols in self.derived.values() for c in cols}
        return ["label" if j < self.labels else
                column_kind([r[j] for r in self.rows], self.header[j] in per_seed)
                for j in range(len(self.header))]

    def markdown(self) -> str:
        if not self._adjusted:
            self.adjust()
        kinds = self._kinds()
        names = [n for h, k in zip(self.header, kinds) for n in md_names(h, k)]
        lines = [f"### {self.title}", "", self.caption + self.family_caption(), "",
                 "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        for row in self.rows:
            cells = [x for c, h, k in zip(row, self.header, kinds)
                     for x in md_cells(c, len(md_names(h, k)))]
            lines.append("| " + " | ".join(cells) + " |")
        if self.notes:
            lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def csv_rows(self) -> list[list[str]]:
        if not self._adjusted:
            self.adjust()
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
            n = [c.n if isinstance(c, (MeanStd, Paired)) else None for c in (r[j] for r in self.rows)]
            columns.append({"name": h, "kind": k, "csv": csv_names(h, k),
                            "n": n if any(x is not None for x in n) else None})
        return {"labels": [n for h, k in zip(self.header[:self.labels], kinds) for n in
                           csv_names(h, k)],
                "columns": columns, "derived": self.derived,
                "differences": {k: list(v) for k, v in self.differences.items()},
                "intervals": self.intervals,
                "family": [self.header[j] for j in self.paired_columns()]}

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
