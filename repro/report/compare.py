"""``python -m repro compare OLD NEW``: is a regenerated ``paper_tables/`` the same result?

Every cell of every CSV table is compared by its kind, as ``tables.json`` (:mod:`repro.report.schema`)
declares it, rows keyed by all their label columns:

* First each folder is checked on its own: a verdict must follow from the interval at its Holm
  level, its Holm p and level from the table's family of p-values, an estimate's mean must lie
  in its interval, a summary must be the mean of the per-seed values it summarises, a
  difference the difference of its two means.
  A file that fails this was not written by the code (or was edited): the comparison fails.
* mean ± std cells and paired estimates: the two means are two samples of n seeds each (n
  from each folder's own schema, never assumed), and Welch's t-test asks whether they differ by
  more than the seed spread explains. With hundreds of cells some small p-values come by
  chance, so a cell fails only when its p is below ``alpha / (number of tested cells)``
  (Bonferroni: a rerun of the same method fails with probability at most ``alpha``). A verdict
  that changed is reported with both intervals; it fails only through its mean's test.
* per-seed lists: Welch's test of the values; counts k/n and single numbers: within the
  stated tolerances; labels and text: equal.

The summary counts the cells of every kind; none is skipped. Every Markdown table must show
its CSV's cells (:mod:`repro.report.markdown`); figures and the other files must have the
sha256 the writer recorded; across folders they are compared byte for byte only. SciPy and
the standard library only.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from repro.core.errors import ReproError
from repro.report.folder import Folder, changed_files, load_folder
from repro.report.markdown import markdown_problems
from repro.report.schema import ESTIMATE_FIELDS, FILE, KINDS, MISSING, VERDICT_FIELDS
from repro.scoring.stats import (LEVEL, MIN_PAIRED_N, VERDICTS, holm, holm_levels,
                                 verdict_word)

#: A k of a k/n count may move by this many seeds (one seed near the plateau threshold).
COUNT_TOLERANCE = 1
#: A single number (e.g. the raw tower's recall, in points) may move by this much.
VALUE_TOLERANCE = 0.5
#: Printed 4-decimal numbers recomputed from other printed numbers agree to this.
ROUNDING = 2e-4


@dataclass
class Cell:
    table: str
    row: str
    column: str
    kind: str
    old: object
    new: object
    p: float | None = None      # Welch two-sided p-value, for the tested kinds
    ok: bool = True
    why: str = ""


# ----------------------------------------------------------------------------- reading

def welch_p(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int) -> float:
    """Two-sided p-value of Welch's t-test for two means with sample stds and sizes."""
    from scipy import stats

    se2 = s1 * s1 / n1 + s2 * s2 / n2
    if se2 == 0:
        return 1.0 if math.isclose(m1, m2, abs_tol=5e-5) else 0.0
    t = (m1 - m2) / math.sqrt(se2)
    df = se2 * se2 / ((s1 * s1 / n1) ** 2 / (n1 - 1) + (s2 * s2 / n2) ** 2 / (n2 - 1))
    return float(2 * stats.t.sf(abs(t), df))


def _missing(cells: list[str]) -> bool:
    return cells[0] in MISSING


def _floats(cells: list[str]) -> list[float]:
    return [float(c) for c in cells]


def _estimate(cells: list[str]) -> dict:
    f = dict(zip(ESTIMATE_FIELDS, cells))
    out = {k: float(f[k]) for k in ("mean", "CI low", "CI high")}
    out["n"], out["items"] = int(f["n"]), int(f["items"])
    return out


def _verdict(cells: list[str]) -> dict:
    f = dict(zip(VERDICT_FIELDS, cells))
    out = {k: float(f[k]) for k in ("p", "Holm p", "level", "low", "high")}
    out["verdict"] = f["verdict"]
    return out


def _t_crit(n: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + LEVEL / 2, n - 1))


def _sd_of_interval(low: float, high: float, n: int) -> float:
    """The per-seed sd behind a 95% t-interval of a mean over n seeds."""
    return (high - low) / 2 / _t_crit(n) * math.sqrt(n)


# ----------------------------------------------------------------------------- one folder

def consistency(folder: Folder, alpha: float = 0.05) -> list[str]:
    """Problems of one folder on its own: files changed after they were written; Markdown
    tables that do not show their CSV's numbers; verdicts,
    p-values, summaries and differences that do not follow from the numbers they are
    computed from."""
    problems = changed_files(folder) + markdown_problems(folder)
    for name, entry in folder.schema.items():
        rows = folder.tables[name]
        kinds = {c["name"]: c["kind"] for c in entry["columns"]}
        family = []
        for key, row in rows.items():
            where = f"{name} / {' / '.join(key)}"
            for col, (cells, n) in row.items():
                if _missing(cells):
                    continue
                try:
                    problems += _cell_consistency(where, col, kinds[col], cells, n, alpha)
                except ValueError:
                    problems.append(f"{where} / {col}: not a {kinds[col]} cell: {cells}")
                    continue
                if kinds[col] == "verdict":
                    family.append((where, col, _verdict(cells)))
            problems += _row_relations(where, entry, row)
        ps = [c["p"] for _, _, c in family]
        for (where, col, c), a, level in zip(family, holm(ps), holm_levels(ps, alpha)):
            if abs(a - c["Holm p"]) > 1e-4 + 1e-5 * len(family):
                problems.append(f"{where} / {col}: Holm p {c['Holm p']:.4g} is not the Holm "
                                f"adjustment of the table's p-values ({a:.4g})")
            if abs(level - c["level"]) > 1e-5 * level:
                problems.append(f"{where} / {col}: level {c['level']:.4g} is not the level "
                                f"Holm tests it at ({level:.4g})")
    return problems


def _cell_consistency(where: str, col: str, kind: str, cells: list[str], n, alpha) -> list[str]:
    if kind == "mean_std":
        mean, std = _floats(cells)
        return [f"{where} / {col}: negative std {std}"] if std < 0 else []
    if kind == "estimate":
        c = _estimate(cells)
        out = []
        if n is not None and c["n"] != n:
            out.append(f"{where} / {col}: n {c['n']} differs from {FILE}'s {n}")
        if c["n"] < MIN_PAIRED_N:
            out.append(f"{where} / {col}: an estimate from n {c['n']}: fewer than "
                       f"{MIN_PAIRED_N} seeds have no interval (the cell should be n/a)")
        if not c["CI low"] - ROUNDING <= c["mean"] <= c["CI high"] + ROUNDING:
            out.append(f"{where} / {col}: mean {c['mean']} outside its interval")
        return out
    if kind != "verdict":
        return []
    c = _verdict(cells)
    expected = verdict_word(c["low"], c["high"])
    out = []
    if c["verdict"] not in VERDICTS or c["verdict"] != expected:
        out.append(f"{where} / {col}: verdict {c['verdict']!r} does not follow from its interval "
                   f"[{c['low']:+.2f}, {c['high']:+.2f}] (expected {expected!r})")
    if (c["p"] <= c["level"]) != (expected != "no difference shown"):
        out.append(f"{where} / {col}: p {c['p']:.4g} at level {c['level']:.4g} and the interval "
                   f"[{c['low']:+.2f}, {c['high']:+.2f}] disagree")
    if (c["Holm p"] <= alpha) != (expected != "no difference shown") or c["Holm p"] < c["p"] - 1e-9:
        out.append(f"{where} / {col}: Holm p {c['Holm p']:.4g} and verdict {c['verdict']!r} "
                   "disagree")
    return out


def _mean_of(row: dict, col: str) -> float | None:
    cells, _ = row[col]
    return None if _missing(cells) else float(cells[0])


def _row_relations(where: str, entry: dict, row: dict) -> list[str]:
    """The row's declared relations: derived summaries, differences, intervals."""
    out = []
    for col, (a, b) in entry["differences"].items():
        values = [_mean_of(row, c) for c in (col, a, b)]
        if None not in values and abs(values[0] - (values[1] - values[2])) > 1.5 * ROUNDING:
            out.append(f"{where} / {col}: {values[0]:.4f} is not {a} − {b} "
                       f"({values[1]:.4f} − {values[2]:.4f})")
    for col, seeds in entry["derived"].items():
        cells, _ = row[col]
        if _missing(cells):
            continue
        values = [float(row[s][0][0]) for s in seeds if not _missing(row[s][0])]
        if len(values) < MIN_PAIRED_N:  # the writer prints "not run" for one seed
            out.append(f"{where} / {col}: a paired summary of {len(values)} per-seed value(s); "
                       f"it needs at least {MIN_PAIRED_N}")
            continue
        c = _estimate(cells)
        if abs(statistics.fmean(values) - c["mean"]) > ROUNDING or c["n"] != len(values):
            out.append(f"{where} / {col}: does not summarise its per-seed values {values}")
    for col, of in entry["intervals"].items():
        cells, _ = row[col]
        base, n = row[of]
        if _missing(cells) or _missing(base):
            continue
        low, high = _floats(cells)
        mean, std = _floats(base)
        half = _t_crit(n) * std / math.sqrt(n)
        if abs(low - (mean - half)) > 5 * ROUNDING or abs(high - (mean + half)) > 5 * ROUNDING:
            out.append(f"{where} / {col}: [{low}, {high}] is not the 95% t-interval of {of}")
    return out


# ----------------------------------------------------------------------------- two folders

#: Keys of ``manifest.json["numerics"]`` that decide the bits (threads included).
FINGERPRINT_KEYS = ("mode", "cpu_model", "cpu_flags", "machine", "torch_cpu_capability",
                    "torch_threads", "env", "numpy", "torch", "mkl", "onednn", "openmp",
                    "numpy_blas", "numpy_simd_found")


def fingerprint(folder: Path) -> dict | None:
    """The numerics fingerprint of the run that wrote ``folder``: CPU model and flags, kernel
    pins, thread count and library versions (None without a readable manifest)."""
    try:
        manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    numerics = manifest.get("numerics") or {}
    return {"numerics": {k: numerics.get(k) for k in FINGERPRINT_KEYS},
            "versions": manifest.get("versions")}


def fingerprint_difference(old: Path, new: Path) -> list[str]:
    """What differs between the two folders' numerics fingerprints ([] when they are equal)."""
    a, b = fingerprint(old), fingerprint(new)
    if a is None or b is None:
        return ["no manifest.json to compare"]
    out = [f"{k}: {a['numerics'][k]} -> {b['numerics'][k]}" for k in FINGERPRINT_KEYS
           if a["numerics"][k] != b["numerics"][k]]
    versions = a["versions"] or {}, b["versions"] or {}
    out += [f"{k}: {versions[0].get(k)} -> {versions[1].get(k)}"
            for k in sorted(set(versions[0]) | set(versions[1]))
            if versions[0].get(k) != versions[1].get(k) and k != "xlir-repro"]
    return out


def _compare_cell(name, key, col, kind, old, new) -> Cell:
    (a, n_a), (b, n_b) = old, new
    cell = Cell(name, " / ".join(key), col, kind, a, b)
    if a == b and n_a == n_b:
        return cell
    if _missing(a) or _missing(b) or kind in ("label", "text"):
        cell.ok, cell.why = False, f"{a} -> {b}"
        return cell
    if kind == "mean_std":
        (m1, s1), (m2, s2) = _floats(a), _floats(b)
        cell.old, cell.new, cell.p = (m1, s1), (m2, s2), welch_p(m1, s1, n_a, m2, s2, n_b)
    elif kind == "estimate":
        p1, p2 = _estimate(a), _estimate(b)
        if min(p1["n"], p2["n"]) < MIN_PAIRED_N:  # no spread to test (consistency says so)
            cell.ok, cell.why = False, f"n {p1['n']} -> {p2['n']}: below {MIN_PAIRED_N} seeds"
            return cell
        # the per-seed sd behind the interval read as a t-interval over seeds (a crossed
        # interval is wider: the test is conservative)
        sd1 = _sd_of_interval(p1["CI low"], p1["CI high"], p1["n"])
        sd2 = _sd_of_interval(p2["CI low"], p2["CI high"], p2["n"])
        cell.old, cell.new = (p1["mean"], sd1), (p2["mean"], sd2)
        cell.p = welch_p(p1["mean"], sd1, p1["n"], p2["mean"], sd2, p2["n"])
    elif kind == "verdict":
        v1, v2 = _verdict(a), _verdict(b)
        if v1["verdict"] != v2["verdict"]:
            cell.why = (f"verdict {v1['verdict']!r} [{v1['low']:+.2f}, {v1['high']:+.2f}]"
                        f" -> {v2['verdict']!r} [{v2['low']:+.2f}, {v2['high']:+.2f}]")
    elif kind == "seed_list":
        va, vb = ([float(x) for x in c[0].split(", ") if x != "never"] for c in (a, b))
        nev = [c[0].split(", ").count("never") for c in (a, b)]
        if abs(nev[0] - nev[1]) > COUNT_TOLERANCE:
            cell.ok, cell.why = False, f"'never' {nev[0]} -> {nev[1]} times"
        elif len(va) >= 2 and len(vb) >= 2:
            cell.old, cell.new = ((statistics.mean(v), statistics.stdev(v)) for v in (va, vb))
            cell.p = welch_p(*cell.old, len(va), *cell.new, len(vb))
    elif kind == "counts":
        ka, kb = ([tuple(map(int, x.split("/"))) for x in c[0].split(", ")] for c in (a, b))
        if len(ka) != len(kb) or any(x[1] != y[1] or abs(x[0] - y[0]) > COUNT_TOLERANCE
                                     for x, y in zip(ka, kb)):
            cell.ok, cell.why = False, f"{a[0]} -> {b[0]} (tolerance ±{COUNT_TOLERANCE} per k)"
    elif kind == "value":
        if abs(float(a[0]) - float(b[0])) > VALUE_TOLERANCE:
            cell.ok, cell.why = False, f"{a[0]} -> {b[0]} (tolerance ±{VALUE_TOLERANCE:g})"
    # per_seed and interval cells are checked through the cells they belong to (consistency)
    return cell


def compare(old: Path, new: Path, alpha: float = 0.05) -> dict:
    """Compare two ``paper_tables/`` folders; returns a summary (see the module docstring)."""
    a, b = load_folder(Path(old)), load_folder(Path(new))
    names = sorted(p.name for p in a.path.glob("*") if p.is_file() and p.name != "manifest.json")
    missing = [n for n in names if not (b.path / n).is_file()]
    if missing:
        raise ReproError(f"{b.path / missing[0]}: missing ({len(missing)} files of {a.path} missing)")
    identical = [n for n in names if (a.path / n).read_bytes() == (b.path / n).read_bytes()]
    problems = [f"{a.path.name} (old): {p}" for p in consistency(a, alpha)]
    problems += [f"{b.path.name} (new): {p}" for p in consistency(b, alpha)]
    cells = []
    for name, entry in a.schema.items():
        if name not in b.schema or b.schema[name]["labels"] != entry["labels"]:
            raise ReproError(f"{b.path / name}: not in the new {FILE}, or keyed differently")
        rows_a, rows_b = a.tables[name], b.tables[name]
        for key in [k for k in rows_b if k not in rows_a][:1]:
            raise ReproError(f"{b.path / name}: row {' / '.join(key)!r} is not in the old folder")
        kinds = {c["name"]: c["kind"] for c in entry["columns"]}
        for key, row in rows_a.items():
            if key not in rows_b:
                raise ReproError(f"{b.path / name}: row {' / '.join(key)!r} is missing")
            for col, cells_a in row.items():
                try:
                    cells.append(_compare_cell(name, key, col, kinds[col], cells_a,
                                               rows_b[key][col]))
                except (ValueError, KeyError, IndexError):
                    old_cells, new_cells = (", ".join(c[0]) for c in (cells_a, rows_b[key][col]))
                    raise ReproError(f"{b.path / name} / {' / '.join(key)} / {col}: not a "
                                     f"{kinds[col]} cell ({old_cells} -> {new_cells})") from None
    tested = [c for c in cells if c.p is not None]
    threshold = alpha / max(1, len(tested))
    for c in tested:
        if c.p < threshold:
            c.ok = False
    failed = [c for c in cells if not c.ok]
    return {"files": len(names), "identical": identical,
            "differing": [n for n in names if n not in identical],
            "by_kind": _by_kind(cells), "cells": len(cells), "cells_tested": len(tested),
            "threshold": threshold, "failed": failed, "problems": problems,
            "verdict_changes": [c for c in cells if c.kind == "verdict" and c.why],
            "worst": min(tested, key=lambda c: c.p, default=None),
            "largest_shift": max(tested, key=lambda c: abs(c.new[0] - c.old[0]), default=None),
            "ok": not failed and not problems}


def _by_kind(cells: list[Cell]) -> dict:
    out = {}
    for c in cells:
        k = out.setdefault(c.kind, {"cells": 0, "identical": 0, "tested": 0, "failed": 0})
        k["cells"] += 1
        k["identical"] += c.old == c.new
        k["tested"] += c.p is not None
        k["failed"] += not c.ok
    return out


def format_summary(s: dict) -> list[str]:
    lines = [f"{len(s['identical'])} of {s['files']} files identical byte for byte"]
    if s["differing"]:
        lines.append("differing: " + ", ".join(s["differing"]))
    lines.append(f"{s['cells']} CSV cells, by kind (identical / tested / failed):")
    for kind, k in sorted(s["by_kind"].items()):
        lines.append(f"  {kind}: {k['cells']} ({k['identical']} / {k['tested']} / {k['failed']})"
                     f" - {KINDS[kind]}")
    lines.append(f"tolerances: counts ±{COUNT_TOLERANCE} per k, single values ±{VALUE_TOLERANCE:g}; "
                 f"Welch t-tests with Bonferroni threshold p < {s['threshold']:.2e} over "
                 f"{s['cells_tested']} tested cells")
    if s["worst"] is not None:
        w, big = s["worst"], s["largest_shift"]
        lines.append(f"worst cell: {w.table} / {w.row} / {w.column}: {w.old[0]:.2f} ± "
                     f"{w.old[1]:.2f} -> {w.new[0]:.2f} ± {w.new[1]:.2f} (p = {w.p:.3g})")
        lines.append(f"largest shift: {big.table} / {big.row} / {big.column}: "
                     f"{big.old[0]:.2f} -> {big.new[0]:.2f} ({big.new[0] - big.old[0]:+.2f})")
    for c in s["verdict_changes"]:
        lines.append(f"verdict changed: {c.table} / {c.row} / {c.column}: {c.why}")
    for p in s["problems"]:
        lines.append(f"INCONSISTENT: {p}")
    for c in s["failed"]:
        what = (f"{c.old[0]:.2f} ± {c.old[1]:.2f} -> {c.new[0]:.2f} ± {c.new[1]:.2f} "
                f"(p = {c.p:.3g})" if c.p is not None else c.why)
        lines.append(f"FAILED: {c.table} / {c.row} / {c.column}: {what}")
    n_bad = len(s["failed"]) + len(s["problems"])
    lines.append("compare: OK" if s["ok"] else f"compare: FAILED ({n_bad} cells)")
    return lines
