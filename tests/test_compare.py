"""``python -m repro compare``: every cell by its kind, rows keyed by all label columns, each
table's own seed count, verdicts that must follow from their intervals; run on the committed
``paper_tables/`` and on copies edited the way a hand or a bug would."""

import csv
import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats as sps

from conftest import call_main
from repro.config import make_config
from repro.core.errors import ReproError
from repro.core.fileio import sha256_file
from repro.report.compare import (compare, consistency, fingerprint_difference, format_summary,
                                  welch_p)
from repro.report.folder import load_folder

COMMITTED = Path(__file__).resolve().parents[1] / "paper_tables"
T2C = "table2c_length_muse.csv"
T0 = "table0_endpoints.csv"
#: Table 2c's default length (epochs column).
BASE = str(make_config("mini").epochs)


def _endpoint_row(name: str) -> tuple:
    """Table 0's key (endpoint, setting) of a declared endpoint's own row."""
    from repro.design import ENDPOINTS

    e = next(e for e in ENDPOINTS if e.name == name)
    return (e.name, e.setting)


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _write(path, rows):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _edit(folder, name, row_labels, column, fn):
    """Apply ``fn`` to one CSV cell, found by its row's leading labels and its column name."""
    rows = _rows(folder / name)
    j = rows[0].index(column)
    hits = [r for r in rows[1:] if tuple(r[:len(row_labels)]) == row_labels]
    assert len(hits) == 1, (row_labels, column)
    hits[0][j] = fn(hits[0][j])
    _write(folder / name, rows)
    _sign(folder, name)
    _rerender_markdown(folder, name, rows)


def _rerender_markdown(folder, name, rows):
    """Rewrite the Markdown rows of CSV table ``name`` from its (edited) CSV ``rows``, as the
    writer of a rerun would, and record the new sha256."""
    from repro.report.cells import cell_of_csv, md_cells, md_names

    columns = json.loads((folder / "tables.json").read_text(encoding="utf-8"))[
        "tables"][name]["columns"]
    md = folder / name.replace(".csv", ".md")
    lines = md.read_text(encoding="utf-8").split("\n")
    first = next(i for i, line in enumerate(lines) if line.startswith("|---")) + 1
    for i, row in enumerate(rows[1:]):
        cells, k = [], 0
        for col in columns:
            width = len(col["csv"])
            try:
                cell = cell_of_csv(col["kind"], row[k:k + width])
            except ValueError:  # a deliberately broken cell: shown as it is
                cell = row[k]
            cells += md_cells(cell, len(md_names(col["name"], col["kind"])))
            k += width
        lines[first + i] = "| " + " | ".join(cells) + " |"
    md.write_text("\n".join(lines), encoding="utf-8")
    _sign(folder, md.name)


def _sign(folder, name):
    """Record a file's new sha256 in the schema, as the writer of a rerun would."""
    spec = json.loads((folder / "tables.json").read_text(encoding="utf-8"))
    spec.setdefault("files", {})[name] = sha256_file(folder / name)
    (folder / "tables.json").write_text(json.dumps(spec, indent=1, ensure_ascii=False) + "\n",
                                        encoding="utf-8")


@pytest.fixture()
def copy(tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(COMMITTED, dst)
    return dst


def test_welch_p_matches_scipy():
    # summary statistics in, the same p as scipy's Welch test on the raw samples
    a, b = [10.0, 11.0, 12.0, 13.0, 14.0], [12.0, 12.5, 14.0, 15.0, 17.0]
    ma, sa = sum(a) / 5, math.sqrt(sum((x - 12) ** 2 for x in a) / 4)
    mb = sum(b) / 5
    sb = math.sqrt(sum((x - mb) ** 2 for x in b) / 4)
    ref = sps.ttest_ind(a, b, equal_var=False).pvalue
    assert welch_p(ma, sa, 5, mb, sb, 5) == pytest.approx(ref)
    assert welch_p(1.0, 0.0, 5, 1.0, 0.0, 5) == 1.0 and welch_p(1.0, 0.0, 5, 1.1, 0.0, 5) == 0.0


def test_committed_tables_against_themselves_every_cell_identical_by_kind():
    s = compare(COMMITTED, COMMITTED)
    assert s["ok"] and not s["problems"] and s["differing"] == []
    kinds = s["by_kind"]
    # every kind the tables hold is counted, and every cell is identical
    assert {"label", "mean_std", "estimate", "verdict", "per_seed", "counts", "seed_list",
            "interval", "value"} <= set(kinds)
    assert sum(k["cells"] for k in kinds.values()) == s["cells"]
    assert all(k["identical"] == k["cells"] and k["failed"] == 0 for k in kinds.values())
    lines = format_summary(s)
    assert lines[-1] == "compare: OK" and any(l.startswith("  estimate: ") for l in lines)


def test_table2c_rows_are_keyed_by_metric_learning_rate_and_epochs(copy):
    # shift both arms of one row by 5 points: the paired difference is unchanged, so the file
    # stays consistent; the failures must name that row, never another one
    row = ("non-English R@1", "1e-3", BASE)
    for col in ("PATR mean", "M3 mean"):
        _edit(copy, T2C, row, col, lambda v: f"{float(v) + 5:.4f}")
    s = compare(COMMITTED, copy)
    assert not s["problems"]
    assert {(c.table, c.row, c.column) for c in s["failed"]} == {
        (T2C, f"non-English R@1 / 1e-3 / {BASE}", "PATR"), (T2C, f"non-English R@1 / 1e-3 / {BASE}", "M3")}


@pytest.mark.parametrize("row", [("non-English R@1", "1e-3", BASE), ("non-English R@10", "3e-4", BASE),
                                 ("English R@1", "1e-3", BASE), ("English R@10", "3e-4", BASE)])
@pytest.mark.parametrize("column", ["PATR mean", "M3 mean"])
def test_a_5_point_shift_in_any_table2c_row_fails_and_names_the_cell(copy, row, column):
    _edit(copy, T2C, row, column, lambda v: f"{float(v) + 5:.4f}")
    s = compare(COMMITTED, copy)
    assert not s["ok"]
    assert any(f"{T2C} / {' / '.join(row)} / M3 − PATR" in p for p in s["problems"])
    out = "\n".join(format_summary(s))
    assert "INCONSISTENT: copy (new): " + f"{T2C} / {' / '.join(row)}" in out


@pytest.mark.parametrize("endpoint", ["own optimum", "tagging vs chance"])
def test_an_edited_verdict_fails(copy, endpoint):
    row = _endpoint_row(endpoint)
    rows = _rows(COMMITTED / T0)
    word = next(r for r in rows[1:] if tuple(r[:2]) == row)[rows[0].index("test verdict")]
    other = "higher" if word != "higher" else "lower"
    _edit(copy, T0, row, "test verdict", lambda v: other)
    s = compare(COMMITTED, copy)
    assert not s["ok"]
    assert any(f"{' / '.join(row)} / test: verdict {other!r} does not follow" in p
               for p in s["problems"])


def test_an_edited_p_value_breaks_the_holm_family(copy):
    _edit(copy, T0, _endpoint_row("tower axis"), "test p", lambda v: "0.9")
    s = compare(COMMITTED, copy)
    assert not s["ok"] and any("is not the Holm adjustment" in p for p in s["problems"])


def test_the_lambda_table_is_tested_with_its_own_3_seeds(copy):
    name = "table_lambda_muse.csv"
    schema = json.loads((COMMITTED / "tables.json").read_text())["tables"][name]
    col = next(c for c in schema["columns"] if c["name"] == "English R@1")
    assert set(col["n"]) == {3}
    rows = _rows(copy / name)
    j = rows[0].index("English R@1 mean")
    m, sd = float(rows[1][j]), float(rows[1][j + 1])
    new = m + 2 * sd
    _edit(copy, name, tuple(rows[1][:4]), "English R@1 mean", lambda v: f"{new:.4f}")
    s = compare(COMMITTED, copy)
    cell = s["worst"]
    assert (cell.table, cell.column) == (name, "English R@1")
    assert cell.p == pytest.approx(welch_p(m, sd, 3, new, sd, 3), rel=1e-6)
    assert cell.p != pytest.approx(welch_p(m, sd, 5, new, sd, 5), rel=1e-3)


def test_a_paired_cell_of_one_seed_is_inconsistent(copy):
    """An interval that claims n = 1 (one replicate has none) fails the folder."""
    _edit(copy, T2C, ("non-English R@1", "1e-3", BASE), "M3 − PATR n", lambda v: "1")
    s = compare(COMMITTED, copy)
    where = f"{T2C} / non-English R@1 / 1e-3 / {BASE} / M3 − PATR"
    assert not s["ok"]
    assert f"copy (new): {where}: an estimate from n 1: fewer than 2 seeds have no interval " \
           "(the cell should be n/a)" in s["problems"]
    assert [(c.row, c.why) for c in s["failed"]] == [
        (f"non-English R@1 / 1e-3 / {BASE}", "n 20 -> 1: below 2 seeds")]  # no Welch test of it


def test_derived_per_seed_values_and_counts(copy):
    name = "table2b_paired_R1_muse.csv"
    _edit(copy, name, ("de",), "InfoNCE − M3 seed 2", lambda v: f"{float(v) + 1:.4f}")
    s = compare(COMMITTED, copy)
    assert any("de / InfoNCE − M3: does not summarise its per-seed values" in p
               for p in s["problems"])
    c2 = copy.parent / "c2"
    shutil.copytree(COMMITTED, c2)
    _edit(c2, T2C, ("English R@1", "1e-3", BASE), "ended on plateau (PATR, M3)", lambda v: "1/20, 0/20")
    assert compare(COMMITTED, c2)["ok"]           # one seed: within the tolerance
    _edit(c2, T2C, ("English R@1", "1e-3", BASE), "ended on plateau (PATR, M3)", lambda v: "2/20, 0/20")
    s = compare(COMMITTED, c2)
    assert [c.column for c in s["failed"]] == ["ended on plateau (PATR, M3)"]


def test_compare_cli_exit_codes_strictness_and_errors(copy, tmp_path, capsys):
    from repro import cli

    out = subprocess.run([sys.executable, "-m", "repro", "compare", str(COMMITTED), str(copy)],
                         capture_output=True, text=True)   # once as its own process
    assert out.returncode == 0 and "compare: OK" in out.stdout
    run = lambda *a: call_main(cli.main, ["compare", *a], capsys)  # noqa: E731
    # a real difference (consistent file): fails with the same fingerprint ...
    name = "table2b_variants_muse.csv"
    _edit(copy, name, ("de",), "PATR R@1 mean", lambda v: f"{float(v) + 5:.4f}")
    assert fingerprint_difference(COMMITTED, copy) == []
    out = run("--strict", "auto", str(COMMITTED), str(copy))
    assert out.returncode == 1 and f"FAILED: {name} / de / PATR R@1" in out.stdout
    # ... and is reported without failing when the machines differ
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["numerics"]["cpu_model"] = "Another CPU"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    out = run("--strict", "auto", str(COMMITTED), str(copy))
    assert out.returncode == 0 and "not failing" in out.stdout and "Another CPU" in out.stdout
    assert run(str(COMMITTED), str(copy)).returncode == 1          # --strict yes: fails
    # an inconsistent file fails whatever the machine
    _edit(copy, T0, _endpoint_row("own optimum"), "test verdict",
          lambda v: "higher" if v != "higher" else "lower")
    assert run("--strict", "auto", str(COMMITTED), str(copy)).returncode == 1
    out = run(str(COMMITTED), str(tmp_path / "nope"))
    assert out.returncode == 2 and out.stderr.startswith("error: ") and "no such folder" in out.stderr
    (copy / "old_table.csv").write_text("language,A\nen,1.0\n")
    with pytest.raises(ReproError, match="old_table.csv: a CSV table that tables.json does not"):
        compare(COMMITTED, copy)           # no cell is skipped silently
    (copy / "old_table.csv").unlink()
    (copy / T2C).unlink()
    with pytest.raises(ReproError, match="missing"):
        compare(COMMITTED, copy)


def test_a_file_edited_after_it_was_written_fails_and_is_named(copy, capsys):
    """An edit a reader would see (a Markdown table, a figure) cannot pass: every file's
    sha256 is recorded by its writer in tables.json."""
    from repro import cli

    md = copy / "table2b_variants_muse.md"
    text = md.read_text(encoding="utf-8")
    number = next(t for t in text.split() if t.count(".") == 1 and t.replace(".", "").isdigit())
    md.write_text(text.replace(number, "99.9", 1), encoding="utf-8")
    png = copy / "figure6_mechanism.png"
    png.write_bytes(png.read_bytes()[:-1] + b"x")
    out = call_main(cli.main, ["compare", str(COMMITTED), str(copy)], capsys)
    assert out.returncode == 1 and "compare: FAILED" in out.stdout
    for name in (md.name, png.name):
        assert (f"INCONSISTENT: {copy.name} (new): {name}: changed after it was written (not "
                "the sha256 tables.json records)") in out.stdout


def test_a_markdown_table_must_show_its_csv_numbers(copy):
    """An edit of the file a reader sees fails even when its sha256 is recorded again: every
    number of every Markdown table is checked against its CSV, to its printed precision."""
    md = copy / "table2b_variants_e5.md"
    text = md.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| de |"))
    cells = row.split(" | ")
    csv_row = next(r for r in _rows(copy / "table2b_variants_e5.csv") if r[0] == "de")
    mean, std = float(csv_row[1]), float(csv_row[2])   # PATR R@1 of de
    printed = f"{mean:.1f} ± {std:.1f}"
    assert cells[1] == printed
    one_digit, two_digits = f"{mean + 0.1:.1f} ± {std:.1f}", f"{mean + 0.2:.1f} ± {std:.1f}"
    for shown, fails in ((one_digit, False), (two_digits, True), (f"{mean:.1f} ± {std + 0.2:.1f}", True),
                         (f"99.9 ± {std:.1f}", True), (printed.replace(" ± ", "±"), True)):
        md.write_text(text.replace(row, " | ".join([cells[0], shown] + cells[2:])), "utf-8")
        _sign(copy, md.name)
        problems = compare(COMMITTED, copy)["problems"]
        want = [f"copy (new): {md.name}: row 'de', column 'PATR R@1' shows '{shown}', its CSV "
                f"'{printed}'"]
        assert problems == (want if fails else []), shown
    md.write_text(text.replace(row, row + "\n" + row), "utf-8")
    _sign(copy, md.name)
    assert compare(COMMITTED, copy)["problems"] == [
        f"copy (new): {md.name}: 14 rows, table2b_variants_e5.csv has 13"]
    md.unlink()
    assert f"{md.name}: missing (the Markdown of table2b_variants_e5.csv)" in \
        consistency(load_folder(copy))


@pytest.mark.parametrize("damage,error", [
    (lambda t: t[:len(t) // 2], "ends mid-line (cut?)"),
    (lambda t: "", "empty (no header)"),
])
def test_a_malformed_csv_is_a_one_line_error(copy, capsys, damage, error):
    from repro import cli

    csv_path = copy / "table1_main.csv"
    text = damage(csv_path.read_text(encoding="utf-8"))
    csv_path.write_text(text, encoding="utf-8")
    out = call_main(cli.main, ["compare", str(COMMITTED), str(copy)], capsys)
    assert out.returncode == 2 and out.stdout == "" and len(out.stderr.splitlines()) == 1
    assert out.stderr == f"error: {csv_path}: {error}\n", out.stderr


def test_a_non_numeric_cell_is_a_one_line_error(copy, capsys):
    from repro import cli

    _edit(copy, "table2b_variants_muse.csv", ("de",), "PATR R@1 mean", lambda v: "lots")
    out = call_main(cli.main, ["compare", str(COMMITTED), str(copy)], capsys)
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1
    assert out.stderr.startswith(f"error: {copy / 'table2b_variants_muse.csv'} / de / PATR R@1: "
                                 "not a mean_std cell ("), out.stderr


@pytest.mark.parametrize("alpha", ["2", "0", "nan"])
def test_a_bad_alpha_is_refused(alpha, capsys):
    from repro import cli

    out = call_main(cli.main, ["compare", "--alpha", alpha, str(COMMITTED), str(COMMITTED)], capsys)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == f"error: --alpha {float(alpha)}: must be between 0 and 1 (a test level)\n"

