"""Table cells: typed values (:class:`MeanStd`, :class:`repro.scoring.stats.Estimate`,
:class:`repro.scoring.stats.Verdict`, :class:`Interval`, :class:`Counts`, :class:`SeedList`,
a float, or a string), the schema kind
of each (:mod:`repro.report.schema`), and their two renderings: the CSV cells (full precision)
and the Markdown cells a reader sees (rounded). :func:`cell_of_csv` rebuilds a cell from its
CSV text, so that the Markdown of a written table can be checked against its CSV."""

from __future__ import annotations

from typing import NamedTuple

from repro.report.schema import ESTIMATE_FIELDS, MISSING, VERDICT_FIELDS
from repro.scoring.stats import Estimate, Verdict

#: The mark of a column whose arm has runs that ended on the loss plateau; its footnote
#: (repro.report.common.PLATEAU_NOTE) starts with PLATEAU_MARK_NOTE.
DAGGER = "†"
PLATEAU_MARK_NOTE = f"{DAGGER}k/n:"




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
    for typ, kind in ((MeanStd, "mean_std"), (Estimate, "estimate"), (Verdict, "verdict"),
                      (Interval, "interval"),
                      (Counts, "counts"), (SeedList, "seed_list")):
        if isinstance(c, typ):
            return kind
    if isinstance(c, float):
        return "per_seed" if per_seed else "value"
    if isinstance(c, str):
        return None
    raise TypeError(f"no table cell kind for {type(c).__name__} {c!r}")


def column_kind(cells: list, per_seed: bool) -> str:
    """The schema kind of a column of cells; "text" when all are plain strings."""
    kinds = {_cell_kind(c, per_seed) for c in cells} - {None}
    if len(kinds) > 1:
        raise TypeError(f"a column mixes cell kinds {sorted(kinds)}")
    return kinds.pop() if kinds else "text"


def csv_names(name: str, kind: str) -> list[str]:
    if kind == "mean_std":
        return [f"{name} mean", f"{name} std"]
    if kind == "estimate":
        return [f"{name} {f}" for f in ESTIMATE_FIELDS]
    if kind == "verdict":
        return [f"{name} {f}" for f in VERDICT_FIELDS]
    if kind == "interval":
        return [f"{name} low", f"{name} high"]
    return [name]


def csv_cells(c, width: int) -> list[str]:
    if isinstance(c, MeanStd):
        return [f"{c.mean:.4f}", f"{c.std:.4f}"]
    if isinstance(c, Estimate):
        return [f"{c.mean:.4f}", f"{c.low:.4f}", f"{c.high:.4f}", str(c.n), str(c.items)]
    if isinstance(c, Verdict):
        return [f"{c.p:.6g}", f"{c.p_holm:.6g}", f"{c.level:.6g}", f"{c.low:.4f}",
                f"{c.high:.4f}", c.word]
    if isinstance(c, Interval):
        return [f"{c.low:.4f}", f"{c.high:.4f}"]
    if isinstance(c, float):
        return [f"{float(c):.4f}"]
    return [str(c)] + [""] * (width - 1)


def md_names(name: str, kind: str) -> list[str]:
    if kind == "estimate":
        return [f"{name} [95% CI]"]
    if kind == "verdict":
        return [f"{name}: p (Holm p), Holm level", f"{name}: verdict"]
    return [name]


def md_cells(c, width: int) -> list[str]:
    if isinstance(c, MeanStd):
        return [f"{c.mean:.1f} ± {c.std:.1f}"]
    if isinstance(c, Estimate):
        return [f"{c.mean:+.1f} [{c.low:+.1f}, {c.high:+.1f}]"]
    if isinstance(c, Verdict):
        return [f"p = {c.p:.2g} ({c.p_holm:.2g}), {c.level:.3g}", c.word]
    if isinstance(c, Interval):
        return [f"[{c.low:.1f}, {c.high:.1f}]"]
    if isinstance(c, float):
        return [f"{c:.1f}"]
    return [str(c)] + [""] * (width - 1)


def cell_of_csv(kind: str, cells: list[str]):
    """The cell whose :func:`csv_cells` are ``cells`` (a column of kind ``kind``): the typed
    value, or the plain string of a "not run" / "n/a" / label cell. Numbers are the CSV's
    (4 decimals for means, 6 significant digits for p-values), not the writer's full floats."""
    if kind in ("label", "text") or cells[0] in MISSING:
        return cells[0]
    if kind == "mean_std":
        return MeanStd(float(cells[0]), float(cells[1]), 0)
    if kind == "estimate":
        mean, low, high, n, items = cells
        return Estimate(int(n), int(items), float(mean), float(low), float(high))
    if kind == "verdict":
        p, p_holm, level, low, high, _word = cells
        return Verdict(float(p), float(p_holm), float(level), float(low), float(high))
    if kind == "interval":
        return Interval(float(cells[0]), float(cells[1]))
    if kind == "counts":
        return Counts(cells[0])
    if kind == "seed_list":
        return SeedList(cells[0])
    return float(cells[0])
