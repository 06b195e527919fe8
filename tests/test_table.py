"""The Table type: typed cells become the right CSV columns, Markdown cells and schema entry;
paired cells are estimates without verdicts, verdict cells one Holm family; the caption's n
comes from the cells."""

import csv
import json

import numpy as np
import pytest

from repro.report.compare import compare
from repro.report.schema import FILE
from repro.report.cells import Counts, Interval, SeedList
from repro.report.table import Table, mean_std
from repro.scoring import stats


def _table() -> Table:
    t = Table("t", "T", "Caption.", ["metric", "epochs", "A", "B", "B − A", "plateau",
                                     "steps", "CI of A"], labels=2)
    t.differences["B − A"] = ("B", "A")
    t.intervals["CI of A"] = "A"
    for metric, a, b in (("x", [1.0, 2.0, 3.0], [2.0, 3.5, 4.0]),
                         ("y", [5.0, 5.5, 6.0], [5.0, 5.2, 6.1])):
        diffs = [q - p for p, q in zip(a, b)]
        t.add([metric, "30", mean_std(a), mean_std(b), stats.seed_estimate(diffs),
               Counts("0/3, 1/3"), SeedList("10, 12, never"),
               Interval(*stats.t_interval(a)[1:])], {"B − A": ("B − A", metric)})
    return t


def test_csv_columns_markdown_and_schema():
    t = _table()
    rows = t.csv_rows()
    assert rows[0][:6] == ["metric", "epochs", "A mean", "A std", "B mean", "B std"]
    assert rows[0][6:11] == [f"B − A {f}" for f in ("mean", "CI low", "CI high", "n", "items")]
    assert rows[1][2:4] == ["2.0000", "1.0000"] and rows[1][9:11] == ["3", "0"]
    md = t.markdown()
    assert "| B − A [95% CI] |" in md and "| verdict" not in md and ": verdict" not in md
    assert "paired by seed (3 seeds), with a 95% t-interval over seeds" in md  # items 0
    assert "no verdict words here" in md
    schema = t.schema()
    assert schema["labels"] == ["metric", "epochs"]
    kinds = {c["name"]: c["kind"] for c in schema["columns"]}
    assert kinds == {"metric": "label", "epochs": "label", "A": "mean_std", "B": "mean_std",
                     "B − A": "estimate", "plateau": "counts", "steps": "seed_list",
                     "CI of A": "interval"}
    assert next(c for c in schema["columns"] if c["name"] == "A")["n"] == [3, 3]
    assert schema["family"] == []


def test_verdict_cells_are_the_tables_holm_family():
    rng = np.random.default_rng(0)
    family = [stats.crossed_means(rng.normal(mu, 2.0, (5, 30)), draws=2000) for mu in (1.5, 0.1)]
    t = Table("v", "V", "C.", ["endpoint", "difference", "test"])
    for name, m, v in zip(("a", "b"), family, stats.endpoint_verdicts(family)):
        t.add([name, stats.Estimate(5, 30, float(np.mean(m)), *stats.percentile_interval(m)), v])
    assert t.schema()["family"] == ["test"]
    rows = t.csv_rows()
    assert rows[0][6:] == [f"test {f}" for f in ("p", "Holm p", "level", "low", "high", "verdict")]
    assert [r[-1] for r in rows[1:]] == ["higher", "no difference shown"]
    assert "| test: p (Holm p), Holm level | test: verdict |" in t.markdown()
    # the registered estimates are the printed cells
    u = _table()
    cells = [r[4] for r in u.rows]
    assert u.estimates() == {("B − A", "x"): cells[0], ("B − A", "y"): cells[1]}


def test_an_estimate_registered_twice_is_refused():
    t = _table()
    with pytest.raises(ValueError, match="twice"):
        t.add(list(t.rows[0]), {"B − A": ("B − A", "x")})


def test_a_written_table_is_consistent_and_compares_identical(tmp_path):
    t = _table()
    t.write(tmp_path)
    (tmp_path / FILE).write_text(json.dumps({"format": 2, "tables": {"t.csv": t.schema()}}))
    s = compare(tmp_path, tmp_path)
    assert s["ok"] and not s["problems"]
    assert {k: v["cells"] for k, v in s["by_kind"].items()} == {
        "label": 4, "mean_std": 4, "estimate": 2, "counts": 2, "seed_list": 2, "interval": 2}
    with open(tmp_path / "t.csv", newline="") as f:
        assert len(list(csv.reader(f))) == 3  # header and two rows


def test_mixed_cell_kinds_in_one_column_are_refused():
    t = Table("t", "T", "C.", ["k", "v"])
    t.add(["a", mean_std([1.0, 2.0])])
    t.add(["b", Counts("1/2")])
    with pytest.raises(TypeError, match="mixes cell kinds"):
        t.csv_rows()
