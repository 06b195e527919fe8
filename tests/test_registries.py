"""The extension axes are registries: a text tower, a loss and an arm registered from outside
the package reach the config, the grid, the tables, the figures and the findings with no other
edit; an unknown name is a one-line error, never a fall-through."""

import hashlib
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from repro.config import make_config
from repro.core.errors import ReproError
from repro import design
from repro.model import losses
from repro.towers import text

FAKE_DIM = 24


class HashTower:
    """Each text's feature is drawn from a generator seeded by its sha256: same text, same
    feature, whatever the batch."""

    dim = FAKE_DIM
    weights_id = "hash-tower-1"

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = [np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16))
                .standard_normal(FAKE_DIM) for t in texts]
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), FAKE_DIM)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def hinge_on_the_gap(cfg, t, v, neg, generator=None, epoch=None):
    """[margin - (s(t, v+) - s(t, hardest v-))]_+, mean over the anchors with a negative."""
    sim = t @ v.T
    hardest = sim.masked_fill(~neg, float("-inf")).max(dim=1).values
    has = torch.isfinite(hardest)
    gap = sim.diagonal() - torch.where(has, hardest, torch.zeros_like(hardest))
    return (has * F.relu(cfg.margin - gap)).mean(), losses.diagnostics(sim, neg)


@pytest.fixture
def registered():
    """The hash tower, the gap hinge, the arm "Gap hinge" and a table of it, removed again
    after the test."""
    from repro.report import outputs

    saved = [(reg, dict(reg)) for reg in (text.TEXT_TOWERS, losses.LOSSES, design.ARMS)]
    saved_outputs = list(outputs.OUTPUTS)
    text.register_text_tower(text.TextTower(
        "hash", "Hash tower", FAKE_DIM, build=lambda cfg: HashTower(),
        cache_meta=lambda cfg, load=None: {"weights": HashTower.weights_id},
        unavailable=lambda cfg: None))
    losses.register_loss(losses.Loss(
        "gap_hinge", hinge_on_the_gap, ("margin",), label=lambda cfg: [f"margin {cfg.margin:g}"],
        arm=lambda cfg: "Gap hinge"))
    design.register_arm(design.Arm("Gap hinge", ("loss=gap_hinge",), ("lr=0.001",)))
    outputs.register_output(outputs.Output("Table G", "tables", gap_hinge_table))
    yield
    for reg, before in saved:
        reg.clear()
        reg.update(before)
    outputs.OUTPUTS[:] = saved_outputs


def gap_hinge_table(grid, ctx) -> list:
    """English R@1 of the gap hinge per tower that ran it."""
    from repro.report.table import Table

    t = Table("tableg_gap_hinge", "Table G: the gap hinge", "English text-to-image R@1 (%).",
              ["tower", "R@1"])
    for tower in grid.towers_run:
        for run in grid.runs(tower, "Gap hinge"):
            t.add([tower, run.retrieval["en"]["t2i_R@1"]])
    return [t]


def test_registered_names_are_config_choices(registered):
    cfg = make_config("mini", ["text_tower=hash", "loss=gap_hinge"])
    assert cfg.arm == "Gap hinge"
    assert design.settings_label(make_config("mini", design.ARMS["Gap hinge"].overrides())) == \
        "margin 0.5, lr 1e-3"
    assert "hash" in design.grid_towers()
    assert design.arm_named("Gap hinge") == design.ARMS["Gap hinge"]


def test_unknown_names_are_one_line_errors():
    towers, names = ", ".join(text.TEXT_TOWERS), ", ".join(losses.LOSSES)
    with pytest.raises(ReproError, match=re.escape(f"text_tower='labse': expected one of {towers}")):
        make_config("mini", ["text_tower=labse"])
    with pytest.raises(ReproError, match=re.escape(f"loss='triplet': expected one of {names}")):
        make_config("mini", ["loss=triplet"])
    with pytest.raises(ReproError, match="unknown text tower 'labse'"):
        text.text_tower("labse")
    with pytest.raises(ReproError, match="unknown arm 'Triplet'"):
        design.arm_named("Triplet")
    with pytest.raises(ValueError, match="registered already"):
        losses.register_loss(losses.LOSSES["patr"])


def test_a_registered_tower_loss_and_arm_reach_grid_tables_figures_and_findings(
        registered, mini_features, tmp_path):
    from repro.experiments.reproduce import run_grid
    from repro.report.outputs import write_all

    grid = run_grid("mini", tmp_path / "runs", seeds=(0,), arms=("PATR", "M3", "Gap hinge"),
                    towers=("hash",), sets=("epochs=1", "batch_size=256"), jobs=1,
                    log=lambda *_: None)
    assert grid.towers_run == ["hash"]
    (run,) = grid.runs("hash", "Gap hinge")
    cfg = grid.config("hash", "Gap hinge", 0)
    assert (cfg.loss, cfg.text_tower, cfg.lr) == ("gap_hinge", "hash", 0.001)
    assert run.steps > 0 and np.isfinite(run.retrieval["en"]["t2i_R@1"])

    out = tmp_path / "tables"
    written = write_all(grid, out)
    table2b = (out / "table2b_variants_hash.md").read_text()
    assert "Table 2b: beyond the paper, PATR, M3, Gap hinge (hash)" in table2b
    header = next(line for line in table2b.splitlines() if line.startswith("| language"))
    assert " Gap hinge " in header and header.endswith(" R@10 |")  # after PATR and M3
    assert "Gap hinge margin 0.5, lr 1e-3." in table2b  # its settings, by its loss's label
    assert re.search(r"\| Gap hinge( †\d/\d)? mAP \|", (out / "table3b_tagging_variants_hash.md").read_text())
    assert "figure1_text_clusters_hash.png" in written
    assert {"tableg_gap_hinge.md", "tableg_gap_hinge.csv"} <= set(written)
    assert "### Table G: the gap hinge" in (out / "README.md").read_text()
    findings = (out / "findings.md").read_text()
    assert "- **hash, Gap hinge**: ended on the plateau in" in findings
    assert "- **mbert**: not run (not part of this grid" in findings
    # only the towers that ran have columns; the others are named once, in a note
    for name in ("table1_main", "table3_tagging", "table4b_alignment_test_items"):
        header, *rows = (out / f"{name}.csv").read_text().splitlines()
        assert header.split(",")[1].startswith("hash "), name
        assert not any(t in header for t in ("muse", "mbert", "e5")), name
        assert not any("not run" in r for r in rows), name
        md = (out / f"{name}.md").read_text()
        for tower in ("mbert", "muse", "e5"):
            assert md.count(f"- {tower}: not run: not part of this grid") == 1, (name, tower)
    # Table 2 needs the matched pairs, which this grid did not train: no tower has columns
    table2 = (out / "table2_ablation.md").read_text()
    assert "- hash: not in this table: its grid does not run these arms" in table2
