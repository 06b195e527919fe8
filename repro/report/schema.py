"""The contract between the table writer (:mod:`repro.report.table`) and ``python -m repro compare``:
``paper_tables/tables.json`` says, for every CSV file, which columns label a row and what kind
of cell every other column holds, with the seed count of every statistic (never assumed).

Layout::

    {"format": 1, "alpha": 0.05, "tables": {"<name>.csv": {
        "labels": [CSV column, ...],               # together they key a row
        "columns": [{"name": logical column, "kind": KIND, "csv": [CSV columns],
                     "n": [seed count per row, or null]}, ...],
        "derived": {column: [per-seed columns]},   # column summarises these, row by row
        "differences": {column: [a, b]},           # column's mean = mean(a) - mean(b)
        "intervals": {column: mean_std column},    # a t-interval of that column's mean
        "family": [verdict columns]}}}             # one Holm family: every cell of these
"""

from __future__ import annotations

FILE = "tables.json"
FORMAT = 2

#: kind -> what compare does with it (printed in its summary).
KINDS = {
    "label": "keys the row; must be equal",
    "text": "must be equal",
    "mean_std": "mean ± std over n seeds; Welch t-test against the other folder",
    "estimate": ("paired difference over n seeds (and test items): mean and 95% interval "
                 "(crossed seed × item bootstrap, or t over seeds), no verdict; the mean "
                 "checked inside its interval and tested (Welch) against the other folder"),
    "verdict": ("a declared endpoint's test: bootstrap p, Holm p over the table's verdicts, "
                "the level Holm tested it at, the interval at that level and the verdict; "
                "the verdict checked against that interval, the Holm p and level against "
                "the family's p-values"),
    "interval": "t-interval of a mean ± std cell; checked against it",
    "per_seed": "one seed's value; checked against the summary cell of its row",
    "seed_list": "one value per seed; Welch t-test of the values, 'never' counted",
    "counts": "k/n counts; each k within the stated tolerance, n equal",
    "value": "a single number; within the stated tolerance",
}

#: CSV column suffixes of an estimate cell and of a verdict cell, in order.
ESTIMATE_FIELDS = ("mean", "CI low", "CI high", "n", "items")
VERDICT_FIELDS = ("p", "Holm p", "level", "low", "high", "verdict")
#: Cells that stand for a missing value in any numeric column (equal on both sides).
MISSING = ("not run", "n/a", "")
