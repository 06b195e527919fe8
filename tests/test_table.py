"""The Table type: typed cells become the right CSV columns, Markdown cells and schema entry; all
paired cells of a table are one Holm family; the caption's n comes from the cells."""

import csv
import json

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
        t.add([metric, "30", mean_std(a), mean_std(b), stats.paired_summary(diffs),
               Counts("0/3, 1/3"), SeedList("10, 12, never"),
               Interval(*stats.t_interval(a)[1:])], {"B − A": ("B − A", metric)})
    return t


def test_csv_columns_markdown_and_schema():
    t = _table()
    rows = t.csv_rows()
    assert rows[0][:6] == ["metric", "epochs", "A mean", "A std", "B mean", "B std"]
    assert rows[0][6:14] == [f"B − A {f}" for f in ("mean", "CI low", "CI high", "n",
                                                     "t-test p", "Holm p", "sign-flip p",
                                                     "verdict")]
    assert rows[1][2:4] == ["2.0000", "1.0000"] and rows[1][9] == "3"
    md = t.markdown()
    assert "| B − A [95% CI]; t-test p (Holm) | B − A: sign-flip p | B − A: verdict |" in md
    assert "n = 3 seeds" in md and "Holm-adjusted over this table's 2 verdicts" in md
    assert "at least 0.25" in md  # 2 / 2^3, from the data, not assumed
    schema = t.schema()
    assert schema["labels"] == ["metric", "epochs"]
    kinds = {c["name"]: c["kind"] for c in schema["columns"]}
    assert kinds == {"metric": "label", "epochs": "label", "A": "mean_std", "B": "mean_std",
                     "B − A": "paired", "plateau": "counts", "steps": "seed_list",
                     "CI of A": "interval"}
    assert next(c for c in schema["columns"] if c["name"] == "A")["n"] == [3, 3]
    assert schema["family"] == ["B − A"]


def test_the_table_is_one_holm_family():
    t = _table()
    t.adjust()
    cells = [r[4] for r in t.rows]
    assert [c.p_holm for c in cells] == pytest.approx(stats.holm([c.p_t for c in cells]))
    # the registered estimates are the printed cells, after the adjustment
    assert t.estimates() == {("B − A", "x"): cells[0], ("B − A", "y"): cells[1]}


def test_an_estimate_registered_twice_is_refused():
    t = _table()
    with pytest.raises(ValueError, match="twice"):
        t.add(list(t.rows[0]), {"B − A": ("B − A", "x")})


def test_a_written_table_is_consistent_and_compares_identical(tmp_path):
    t = _table()
    t.write(tmp_path)
    (tmp_path / FILE).write_text(json.dumps({"format": 1, "tables": {"t.csv": t.schema()}}))
    s = compare(tmp_path, tmp_path)
    assert s["ok"] and not s["problems"]
    assert {k: v["cells"] for k, v in s["by_kind"].items()} == {
        "label": 4, "mean_std": 4, "paired": 2, "counts": 2, "seed_list": 2, "interval": 2}
    with open(tmp_path / "t.csv", newline="") as f:
        assert len(list(csv.reader(f))) == 3  # header and two rows


def test_mixed_cell_kinds_in_one_column_are_refused():
    t = Table("t", "T", "C.", ["k", "v"])
    t.add(["a", mean_std([1.0, 2.0])])
    t.add(["b", Counts("1/2")])
    with pytest.raises(TypeError, match="mixes cell kinds"):
        t.csv_rows()
