"""What ``paper_tables/`` holds, in one registry: every table and figure, in the order written,
with whether the top-level README shows it; and :func:`write_all`, which writes them.

An :class:`Output` is made once per grid (``stage`` "tables" or "figures"), once per tower
that ran ("tower figures"), or once per tower whose examples are drawn ("examples"). Its
``make`` returns what it made: :class:`~repro.report.table.Table` objects (written as Markdown,
CSV and a schema entry) and the names of the files it wrote itself (figures).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from repro.core.fileio import atomic_write_bytes, sha256_file
from repro.report.ablation import table2c, table2d, table6, table_lambda
from repro.report.common import Estimates, data_line
from repro.report.endpoints import answers as endpoint_answers, table0
from repro.report.examples import RETRIEVAL_ARMS, figure7, figure8
from repro.report.figures import figure1, figure2, figure2d, figure3, figure4, figure5, figure6
from repro.report.findings import findings, readme_answers, results_index
from repro.report.schema import FILE, FORMAT
from repro.report.table import Table
from repro.report.tables import table1, table2, table2b, table3, table3b, table4
from repro.report.towerstudy import study, table5, table5b
from repro.scoring.stats import ALPHA

#: The stages of :func:`write_all`, in order.
STAGES = ("tables", "examples", "tower figures", "figures")


@dataclass(frozen=True)
class Output:
    """A table or figure family of ``paper_tables/``.

    ``make(grid, ctx)`` (stages "tables", "figures") or ``make(grid, ctx, tower)`` (stages
    "examples", "tower figures") returns a list of Tables and written file names.
    ``readme``: the file of it that the top-level README shows (empty: none), captioned
    ``title``.
    """

    name: str
    stage: str
    make: Callable
    readme: str = ""
    title: str = ""


@dataclass
class Context:
    """What the outputs of one :func:`write_all` share: the folder, Table 5's evaluations (done
    once), the endpoints' answers (Table 0, for the findings) and Figure 1's cluster numbers."""

    out: Path
    studies: dict
    clusters: dict = field(default_factory=dict)
    estimates: dict = field(default_factory=dict)  # output name -> typed key -> cell
    answers: list = field(default_factory=list)    # Table 0's endpoints.Answer list


def _table0(grid, ctx: Context) -> list:
    ctx.answers = endpoint_answers(grid)
    return [table0(grid, ctx.answers)] if ctx.answers else []


#: Every output, in the order written (:func:`register_output`).
OUTPUTS: list[Output] = []


def register_output(output: Output) -> Output:
    if output.stage not in STAGES:
        raise ValueError(f"output {output.name!r}: stage {output.stage!r} is not one of {STAGES}")
    if any(o.name == output.name for o in OUTPUTS):
        raise ValueError(f"output {output.name!r} is registered already")
    OUTPUTS.append(output)
    return output


def tower_studies(grid) -> dict:
    """tower -> Table 5's rows, for every tower whose PATR and M3 ran (evaluation only)."""
    return {t: study(grid, t) for t in grid.towers_run
            if grid.runs(t, "PATR") and grid.runs(t, "M3")}


def example_towers(grid) -> list[str]:
    """Towers whose Figures 7 and 8 are drawn: mini-profile towers with PATR and M3 runs."""
    return [t for t in grid.towers_run if grid.profile == "mini"
            and all(grid.runs(t, a) for a in RETRIEVAL_ARMS)]


def _scopes(grid, stage: str) -> list:
    """The towers an output of ``stage`` is made for ([None]: once for the grid)."""
    return {"examples": example_towers(grid), "tower figures": grid.towers_run}.get(stage, [None])


def make_all(grid, ctx: Context, stages=STAGES) -> dict:
    """stage -> (tables, file names) of every registered output, made in registry order,
    stage by stage (a per-tower stage tower by tower)."""
    made = {}
    for stage in stages:
        tables, files = [], []
        for tower in _scopes(grid, stage):
            for o in (o for o in OUTPUTS if o.stage == stage):
                for x in (o.make(grid, ctx) if tower is None else o.make(grid, ctx, tower)):
                    (tables if isinstance(x, Table) else files).append(x)
                    if isinstance(x, Table):
                        ctx.estimates.setdefault(o.name, {}).update(x.estimates())
        made[stage] = (tables, files)
    return made


def all_tables(grid, studies: dict | None = None) -> tuple[list[Table], Estimates]:
    """The tables of the "tables" stage (no figure drawn) and their registered estimates."""
    ctx = Context(Path("."), tower_studies(grid) if studies is None else studies)
    return make_all(grid, ctx, ("tables",))["tables"][0], Estimates(ctx.estimates)


def write_all(grid, out: Path) -> list[str]:
    """Write every registered output of the grid, its schema, the findings and the results
    index into ``out``; returns the file names, in the order written."""
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(out, tower_studies(grid))
    made = make_all(grid, ctx)
    tables = made["tables"][0] + made["examples"][0]
    written = list(made["examples"][1])
    for t in tables:
        written += t.write(out)
    written.append(FILE)
    written += made["tower figures"][1] + made["figures"][1]
    found = findings(grid, Estimates(ctx.estimates), ctx.studies, ctx.clusters, ctx.answers)
    atomic_write_bytes(out / "findings.md", found.encode())
    written.append("findings.md")
    atomic_write_bytes(out / "README.md", results_index(grid, tables, written, found).encode())
    written.append("README.md")
    # last: the schema of every table, and the sha256 of every file written, so that
    # ``compare`` refuses a file edited afterwards (a Markdown table or a figure a reader sees)
    schema = {"format": FORMAT, "alpha": ALPHA,
              "tables": {f"{t.name}.csv": t.schema() for t in tables},
              "files": {name: sha256_file(out / name) for name in written if name != FILE}}
    atomic_write_bytes(out / FILE, (json.dumps(schema, indent=1, ensure_ascii=False) + "\n").encode())
    return written


def readme_figures(out: Path, readme: Path) -> list[str]:
    """Markdown image lines of the outputs the top-level README shows, relative to it."""
    rel = Path(os.path.relpath(out, readme.parent))
    return [f"![{o.title}]({(rel / o.readme).as_posix()})" for o in OUTPUTS
            if o.readme and (out / o.readme).is_file()]


def update_readme(out: Path, readme: Path) -> bool:
    """Rewrite the README's generated block: the answers (the opening lines of the findings)
    and the figures registered for the README. False when there is no README."""
    if not readme.is_file():
        return False
    answers = readme_answers((out / "findings.md").read_text(encoding="utf-8"),
                             readme_figures(out, readme))
    text = readme.read_text(encoding="utf-8")
    atomic_write_bytes(readme, _between(text, "answers", answers).encode("utf-8"))
    return True


def _between(text: str, marker: str, body: str) -> str:
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    i, j = text.index(start) + len(start), text.index(end)
    return text[:i] + "\n" + body + "\n" + text[j:]


# ----------------------------------------------------------------------------- the registry

def _one(make):
    """An output that makes one Table."""
    return lambda grid, ctx: [make(grid)]


def _file(name):
    """A figure output: its file name when drawn, else nothing."""
    return [name] if name else []


def _figure1(grid, ctx, tower):
    name, stats = figure1(grid, ctx.out, tower)
    ctx.clusters[tower] = stats
    return [name]


def _figure1_numbers(grid, ctx, tower):
    stats = ctx.clusters[tower]
    lines = ["### Figure 1 numbers: text cluster tightness on all test items", "",
             data_line(grid) + " The figure's PATR and M3 panels are one model each (the "
             "first seed); the rows 'over seeds' are the same measures of every seed's model "
             "(metrics.json's text_clusters), mean ± std. The gap is in cosine units, the "
             "separation divides it by the spread of the different-item cosines: a head that "
             "widens that spread can have the larger gap and the smaller separation, so the two "
             "need not rank models alike.", "",
             "| panel | same-item cos | different-item cos | gap | separation (gap / std) |",
             "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['same']:.3f} | {v['diff']:.3f} | {v['gap']:.3f} | "
              f"{v['separation']:.2f} |" for k, v in stats.items()]
    for arm in ("PATR", "M3"):
        runs = grid.runs(tower, arm)
        if len(runs) >= 2:
            ms = {k: (np.mean([r.text_clusters[k] for r in runs]),
                      np.std([r.text_clusters[k] for r in runs], ddof=1))
                  for k in ("same", "diff", "gap", "separation")}
            lines.append(f"| {arm}, over {len(runs)} seeds | "
                         + " | ".join(f"{m:.3f} ± {sd:.3f}" for m, sd in ms.values()) + " |")
    name = f"figure1_numbers_{tower}.md"
    atomic_write_bytes(ctx.out / name, ("\n".join(lines) + "\n").encode())
    return [name]


def _example(figure):
    """Figures 7 and 8: the files and the table of one tower's examples, when drawn."""
    def make(grid, ctx, tower):
        made = figure(grid, ctx.out, tower)
        return [*made[0], made[1]] if made else []
    return make


def _alignment(section, name, title, what):
    return lambda grid, ctx: [table4(grid, section, name, title, what)]


for _output in (
    Output("Table 0", "tables", _table0),
    Output("Table 1", "tables", _one(table1)),
    Output("Table 2", "tables", _one(table2)),
    Output("Table 2b", "tables", lambda grid, ctx: table2b(grid)),
    Output("Table 2c", "tables", lambda grid, ctx: table2c(grid)),
    Output("Table 2d", "tables", lambda grid, ctx: table2d(grid)),
    Output("Table λ", "tables", lambda grid, ctx: table_lambda(grid)),
    Output("Table 6", "tables", lambda grid, ctx: table6(grid)),
    Output("Table 5", "tables", lambda grid, ctx: table5(grid, ctx.studies)),
    Output("Table 5b", "tables", lambda grid, ctx: table5b(grid)),
    Output("Table 3", "tables", _one(table3)),
    Output("Table 3b", "tables", lambda grid, ctx: table3b(grid)),
    Output("Table 4", "tables", _alignment(
        "alignment_xtd10", "table4_alignment_xtd10", "Table 4: tower alignment on XTD10 captions",
        "Queries: the 1000 XTD10 captions of each language; items: the English ones.")),
    Output("Table 4b", "tables", _alignment(
        "alignment_test", "table4b_alignment_test_items",
        "Table 4b: text alignment on the test items",
        "Queries: the test items' captions (emoji names in mini) of each language; "
        "items: the English ones.")),
    Output("Figure 7", "examples", _example(figure7)),
    Output("Figure 8", "examples", _example(figure8)),
    Output("Figure 1", "tower figures", _figure1),
    Output("Figure 2", "tower figures", lambda grid, ctx, tower: _file(figure2(grid, ctx.out, tower))),
    Output("Figure 3", "tower figures", lambda grid, ctx, tower: _file(figure3(grid, ctx.out, tower))),
    Output("Figure 4", "tower figures", lambda grid, ctx, tower: _file(figure4(grid, ctx.out, tower))),
    Output("Figure 2d", "tower figures",
           lambda grid, ctx, tower: _file(figure2d(grid, ctx.out, tower))),
    Output("Figure 1 numbers", "tower figures", _figure1_numbers),
    Output("Figure 5", "figures", lambda grid, ctx: _file(figure5(grid, ctx.studies, ctx.out))
           if ctx.studies else []),
    Output("Figure 6", "figures", lambda grid, ctx: _file(figure6(grid, ctx.out)),
           readme="figure6_mechanism.png", title="Figure 6: M3 − PATR against PATR's time on the loss plateau"),
):
    register_output(_output)
