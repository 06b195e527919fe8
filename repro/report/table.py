"""The Table type of ``paper_tables/``: typed cells, written as Markdown, CSV and a schema entry
(:mod:`repro.report.schema`) that lets ``python -m repro compare`` test every cell by its kind.

Cells are Python values whose type says what they are: :class:`MeanStd` (mean ± std over n
seeds), :class:`repro.scoring.stats.Paired` (a paired difference with its verdict), :class:`Interval`,
:class:`Counts` ("k/n"), :class:`SeedList` (one value per seed), a float (a single number, or
one seed's value in a column that a :attr:`Table.derived` summary is computed from), or a string
(a label, or "not run" / "n/a"). All paired cells of a table form one Holm family.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import NamedTuple

import numpy as np

from repro.core.fileio import atomic_write_bytes
from repro.report.schema import PAIRED_FIELDS
from repro.scoring.stats import ALPHA, EXACT_SIGN_FLIP_MAX_N, SIGN_FLIP_DRAWS, Paired, adjust_family


class MeanStd(NamedTuple):
    """Mean and sample std of n per-seed values."""

    mean: float
    std: float
    n: int


class Interval(NamedTuple):
    """A 95% t-interval [low, high] of a mean."""

    low: float
    high: float


class Counts(str):
    """"k/n" or several "k/n" separated by ", " (e.g. runs that ended on the plateau)."""


class SeedList(str):
    """One integer per seed, ", "-separated; "never" where there is no value."""


def _cell_kind(c, per_seed: bool) -> str | None:
    """The schema kind of one cell; None for a plain string (a label, "not run", "n/a")."""
    for typ, kind in ((MeanStd, "mean_std"), (Paired, "paired"), (Interval, "interval"),
                      (Counts, "counts"), (SeedList, "seed_list")):
        if isinstance(c, typ):
            return kind
    if isinstance(c, float):
        return "per_seed" if per_seed else "value"
    if isinstance(c, str):
        return None
    raise TypeError(f"no table cell kind for {type(c).__name__} {c!r}")


def _kind(cells: list, per_seed: bool) -> str:
    kinds = {_cell_kind(c, per_seed) for c in cells} - {None}
    if len(kinds) > 1:
        raise TypeError(f"a column mixes cell kinds {sorted(kinds)}")
    return kinds.pop() if kinds else "text"


def _csv_names(name: str, kind: str) -> list[str]:
    if kind == "mean_std":
        return [f"{name} mean", f"{name} std"]
    if kind == "paired":
        return [f"{name} {f}" for f in PAIRED_FIELDS]
    if kind == "interval":
        return [f"{name} low", f"{name} high"]
    return [name]


def _csv_cells(c, width: int) -> list[str]:
    if isinstance(c, MeanStd):
        return [f"{c.mean:.4f}", f"{c.std:.4f}"]
    if isinstance(c, Paired):
        return [f"{c.mean:.4f}", f"{c.low:.4f}", f"{c.high:.4f}", str(c.n), f"{c.p_t:.6g}",
                f"{c.p_holm:.6g}", f"{c.p_sign_flip:.6g}", c.verdict]
    if isinstance(c, Interval):
        return [f"{c.low:.4f}", f"{c.high:.4f}"]
    if isinstance(c, float):
        return [f"{float(c):.4f}"]
    return [str(c)] + [""] * (width - 1)


def _md_names(name: str, kind: str) -> list[str]:
    if kind == "paired":
        return [f"{name} [95% CI]; t-test p (Holm)", f"{name}: sign-flip p", f"{name}: verdict"]
    return [name]


def _md_cells(c, width: int) -> list[str]:
    if isinstance(c, MeanStd):
        return [f"{c.mean:.1f} ± {c.std:.1f}"]
    if isinstance(c, Paired):
        return [f"{c.mean:+.1f} [{c.low:+.1f}, {c.high:+.1f}]; p = {c.p_t:.2g} "
                f"({c.p_holm:.2g})", f"{c.p_sign_flip:.3g}", c.verdict]
    if isinstance(c, Interval):
        return [f"[{c.low:.1f}, {c.high:.1f}]"]
    if isinstance(c, float):
        return [f"{c:.1f}"]
    return [str(c)] + [""] * (width - 1)


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
        self._adjusted = False

    def add(self, row: list) -> None:
        assert len(row) == len(self.header), (self.name, row)
        self.rows.append(row)
        self._adjusted = False

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

    def find(self, column: str, *labels: str):
        """The cell of ``column`` in the first row whose label cells start with ``labels``."""
        if not self._adjusted:
            self.adjust()
        j = self.header.index(column)
        for r in self.rows:
            if tuple(r[:len(labels)]) == labels:
                return r[j]
        raise KeyError((self.name, labels, column))

    # --------------------------------------------------------------- output

    def _kinds(self) -> list[str]:
        per_seed = {c for cols in self.derived.values() for c in cols}
        return ["label" if j < self.labels else
                _kind([r[j] for r in self.rows], self.header[j] in per_seed)
                for j in range(len(self.header))]

    def markdown(self) -> str:
        if not self._adjusted:
            self.adjust()
        kinds = self._kinds()
        names = [n for h, k in zip(self.header, kinds) for n in _md_names(h, k)]
        lines = [f"### {self.title}", "", self.caption + self.family_caption(), "",
                 "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        for row in self.rows:
            cells = [x for c, h, k in zip(row, self.header, kinds)
                     for x in _md_cells(c, len(_md_names(h, k)))]
            lines.append("| " + " | ".join(cells) + " |")
        if self.notes:
            lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def csv_rows(self) -> list[list[str]]:
        if not self._adjusted:
            self.adjust()
        kinds = self._kinds()
        out = [[n for h, k in zip(self.header, kinds) for n in _csv_names(h, k)]]
        for row in self.rows:
            out.append([x for c, h, k in zip(row, self.header, kinds)
                        for x in _csv_cells(c, len(_csv_names(h, k)))])
        return out

    def schema(self) -> dict:
        """This table's entry of ``tables.json`` (:mod:`repro.report.schema`)."""
        kinds = self._kinds()
        columns = []
        for j, (h, k) in enumerate(zip(self.header, kinds)):
            n = [c.n if isinstance(c, (MeanStd, Paired)) else None for c in (r[j] for r in self.rows)]
            columns.append({"name": h, "kind": k, "csv": _csv_names(h, k),
                            "n": n if any(x is not None for x in n) else None})
        return {"labels": [n for h, k in zip(self.header[:self.labels], kinds) for n in
                           _csv_names(h, k)],
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
