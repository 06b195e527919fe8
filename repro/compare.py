"""``python -m repro compare OLD NEW``: is a regenerated ``paper_tables/`` the same result?

Files equal byte for byte are *identical* (same numerics). Otherwise every "mean ± std over
seeds" cell of every CSV table is tested: the two means are two samples of n seeds each, and
Welch's two-sample t-test asks whether they differ by more than the seed spread explains. With
hundreds of cells some small p-values come by chance, so a cell fails only when its p-value is
below ``alpha / (number of cells compared)`` (Bonferroni: a rerun with the same method fails the
whole comparison with probability at most ``alpha``). Cells without a spread (std 0 on both
sides) must agree to the printed precision. The worst cell is always printed.

SciPy for the t distribution; reads only the CSV files and ``manifest.json``.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from repro.errors import ReproError


@dataclass
class Cell:
    table: str
    row: str
    column: str
    old: tuple      # (mean, std)
    new: tuple
    p: float        # Welch two-sided p-value (1.0 when both agree exactly)


def _seeds(folder: Path) -> int:
    path = folder / "manifest.json"
    try:
        return len(json.loads(path.read_text())["seeds"])
    except FileNotFoundError:
        raise ReproError(f"{path}: not found (is {folder} a paper_tables folder?)") from None
    except (ValueError, KeyError) as exc:
        raise ReproError(f"{path}: unreadable manifest ({exc})") from None


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def welch_p(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int) -> float:
    """Two-sided p-value of Welch's t-test for two means with sample stds and sizes."""
    from scipy import stats

    se2 = s1 * s1 / n1 + s2 * s2 / n2
    if se2 == 0:
        return 1.0 if math.isclose(m1, m2, abs_tol=5e-5) else 0.0
    t = (m1 - m2) / math.sqrt(se2)
    df = se2 * se2 / ((s1 * s1 / n1) ** 2 / (n1 - 1) + (s2 * s2 / n2) ** 2 / (n2 - 1))
    return float(2 * stats.t.sf(abs(t), df))


def _cells(name: str, old: list[list[str]], new: list[list[str]], n_old: int, n_new: int):
    header = old[0]
    if new[0] != header:
        raise ReproError(f"{name}: the columns differ between the two folders")
    rows_new = {r[0]: r for r in new[1:]}
    for row in old[1:]:
        other = rows_new.get(row[0])
        if other is None:
            raise ReproError(f"{name}: row {row[0]!r} is missing in the new folder")
        for j, col in enumerate(header):
            if not col.endswith(" mean") or j + 1 >= len(header) or header[j + 1] != col[:-5] + " std":
                continue
            try:
                m1, s1, m2, s2 = (float(row[j]), float(row[j + 1]), float(other[j]),
                                  float(other[j + 1]))
            except ValueError:  # "not run" on one side or both
                if row[j] != other[j]:
                    raise ReproError(f"{name}: {row[0]} / {col[:-5]}: {row[j]!r} vs "
                                     f"{other[j]!r}") from None
                continue
            yield Cell(name, row[0], col[:-5], (m1, s1), (m2, s2),
                       welch_p(m1, s1, n_old, m2, s2, n_new))


def compare(old: Path, new: Path, alpha: float = 0.05) -> dict:
    """Compare two ``paper_tables/`` folders; returns a summary (see the module docstring)."""
    old, new = Path(old), Path(new)
    for folder in (old, new):
        if not folder.is_dir():
            raise ReproError(f"{folder}: no such folder")
    n_old, n_new = _seeds(old), _seeds(new)
    names = sorted(p.name for p in old.glob("*") if p.is_file() and p.name != "manifest.json")
    missing = [n for n in names if not (new / n).is_file()]
    if missing:
        raise ReproError(f"{new / missing[0]}: missing ({len(missing)} files of {old} missing)")
    identical = [n for n in names if (old / n).read_bytes() == (new / n).read_bytes()]
    cells = []
    for name in names:
        if name.endswith(".csv") and name not in identical:
            cells += list(_cells(name, _read_csv(old / name), _read_csv(new / name), n_old, n_new))
    threshold = alpha / max(1, len(cells))
    failed = [c for c in cells if c.p < threshold]
    worst = min(cells, key=lambda c: c.p) if cells else None
    return {"files": len(names), "identical": identical,
            "differing": [n for n in names if n not in identical],
            "cells_compared": len(cells), "threshold": threshold, "failed": failed,
            "worst": worst, "largest_shift": max(cells, key=lambda c: abs(c.new[0] - c.old[0]),
                                                 default=None),
            "ok": not failed}


def format_summary(s: dict) -> list[str]:
    lines = [f"{len(s['identical'])} of {s['files']} files identical byte for byte"]
    if s["differing"]:
        lines.append("differing: " + ", ".join(s["differing"]))
    if s["cells_compared"]:
        w, big = s["worst"], s["largest_shift"]
        lines.append(f"{s['cells_compared']} mean cells tested (Welch t-test, Bonferroni "
                     f"threshold p < {s['threshold']:.2e})")
        lines.append(f"worst cell: {w.table} / {w.row} / {w.column}: {w.old[0]:.2f} ± "
                     f"{w.old[1]:.2f} -> {w.new[0]:.2f} ± {w.new[1]:.2f} (p = {w.p:.3g})")
        lines.append(f"largest shift: {big.table} / {big.row} / {big.column}: "
                     f"{big.old[0]:.2f} -> {big.new[0]:.2f} ({big.new[0] - big.old[0]:+.2f})")
    for c in s["failed"]:
        lines.append(f"FAILED: {c.table} / {c.row} / {c.column}: {c.old[0]:.2f} ± {c.old[1]:.2f}"
                     f" -> {c.new[0]:.2f} ± {c.new[1]:.2f} (p = {c.p:.3g})")
    lines.append("compare: OK" if s["ok"] else f"compare: FAILED ({len(s['failed'])} cells)")
    return lines
