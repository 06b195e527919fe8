"""Table 5 (evaluation only): with beta = 0 and alpha = 0 it reproduces the grid's own
numbers exactly; perturbations hurt transfer, centering undoes an offset; the mBERT rows run
on the tiny random BERT; towers are compared paired by seed (Table 5b)."""

import numpy as np
import pytest
import torch

from conftest import few_perturbations
from repro.data.paper import LANGS
from repro.experiments.reproduce import run_grid
from repro.report import analysis
from repro.report.common import Difference
from repro.report.findings import findings
from repro.report.outputs import all_tables, tower_studies

NON_EN = [l for l in LANGS if l != "en"]


@pytest.fixture(scope="module")
def two_towers(tmp_path_factory, tiny_bert, mini_features):
    """The tiny random BERT as mBERT, with the output preprocessing and raw-feature rows that
    E5 has in the grid (same code path), beside mUSE; 2 seeds, 1 epoch; Table 5 with 3 of
    its 9 perturbations (two offsets, one rotation)."""
    from repro import design

    sets = ("epochs=1", "batch_size=256", f"mbert_id={tiny_bert}")
    with pytest.MonkeyPatch.context() as mp:
        few_perturbations(mp)
        mp.setitem(design.TOWER_PLANS, "mbert", design.TowerPlan(
            ("text_preprocess=center_en",), ("PATR", "M3"), raw_rows=True))
        raws = tuple(design.raw_arm(m) for m in ("PATR", "M3"))
        g = run_grid("mini", tmp_path_factory.mktemp("runs2"), seeds=(0, 1),
                     arms=("PATR", "M3", *raws), towers=("mbert", "muse"),
                     sets=sets, log=lambda *_: None, jobs=1)
        studies = tower_studies(g)
        tables, estimates = all_tables(g, studies)
        yield g, studies, {t.name: t for t in tables}, estimates


def test_zero_perturbation_reproduces_the_grid_exactly(two_towers):
    grid, studies, _, _ = two_towers
    rows = studies["muse"]
    real = next(r for r in rows if r["kind"] == "real" and not r["centered"])
    for arm in ("PATR", "M3"):
        for k in ("R@1", "R@10"):
            expected = [float(np.mean([m.retrieval[l][f"t2i_{k}"] for l in NON_EN]))
                        for m in grid.runs("muse", arm)]
            assert real[arm][k] == expected, (arm, k)
    raw = float(np.mean([grid.runs("muse", "M3")[0].alignment_test[l]["raw_R@1"]
                         for l in NON_EN]))
    assert real["alignment_R@1"] == pytest.approx(raw, abs=1e-9)   # Table 4b's raw column
    # every condition comes with and without centering (the mini task has unlabeled names)
    assert len(rows) == 2 * len(analysis.conditions())
    by = {(r["condition"], r["centered"]): r for r in rows}
    big = f"offset β={analysis.BETAS[-1]:g}"
    assert by[(big, False)]["alignment_R@1"] < real["alignment_R@1"] - 10
    # centering removes a pure offset: the centered offset rows equal the centered real row
    for b in analysis.BETAS:
        c = by[(f"offset β={b:g}", True)]
        assert c["alignment_R@1"] == pytest.approx(by[("real", True)]["alignment_R@1"], abs=1e-9)
        assert c["M3"]["R@1"] == pytest.approx(by[("real", True)]["M3"]["R@1"], abs=1e-9)


def test_mbert_rows_run_on_the_tiny_bert_with_and_without_centering(two_towers):
    g, studies, _, _ = two_towers
    assert g.towers_run == ["mbert", "muse"]
    assert not any(k.arm.raw_features for k in g.results if k.tower == "muse")
    assert g.config("mbert", "M3", 0).text_preprocess == "center_en"
    assert g.config("mbert", "M3 raw features", 0).text_preprocess == "none"
    assert g.config("mbert", "M3 raw features", 0).lr == g.config("mbert", "M3", 0).lr
    rows = studies["mbert"]
    labels = {(r["tower"], r["condition"], r["centered"]) for r in rows}
    for centred in (False, True):
        assert ("mBERT centered on English", "real", centred) in labels
        assert ("mBERT raw features", "real", centred) in labels
    # the raw-feature rows are the grid's own raw-feature runs, exactly
    raw = next(r for r in rows if r["tower"] == "mBERT raw features" and not r["centered"])
    for arm in ("PATR", "M3"):
        expected = [float(np.mean([m.retrieval[l]["t2i_R@1"] for l in NON_EN]))
                    for m in g.runs("mbert", f"{arm} raw features")]
        assert raw[arm]["R@1"] == expected, arm
    # the centered task is the raw task's features minus the English training mean, renormalised
    plain, centred = g.arm_task("mbert", "M3 raw features"), g.tasks["mbert"]
    mean = plain.train_text.feats.mean(dim=0, keepdim=True)
    for lang in ("en", "de"):
        want = torch.nn.functional.normalize(plain.test_text[lang].feats - mean, dim=1)
        assert torch.equal(centred.test_text[lang].feats, want), lang
    assert torch.equal(centred.unlabeled["de"].feats,
                       torch.nn.functional.normalize(plain.unlabeled["de"].feats - mean, dim=1))


def test_tower_pair_table_is_paired_by_seed(two_towers):
    g, studies, t, estimates = two_towers
    assert {"table5_towers_mbert", "table5_towers_muse", "table5b_towers_muse_vs_mbert"} <= set(t)
    md = t["table5_towers_mbert"].markdown()
    assert "| mBERT raw features (real) | real | yes |" in md
    assert "| perturbed mBERT centered on English | offset β=4 | no |" in md
    pair = t["table5b_towers_muse_vs_mbert"]
    key = Difference.of("muse", "M3", "M3", NON_EN, "t2i_R@1", b_tower="mbert")
    cell = pair.estimates()[key]
    assert cell == estimates("Table 5b", key)
    row = next(r for r in pair.rows if r[:2] == ["M3", "non-English R@1"])
    assert row[4] == cell  # the printed cell is the one the findings quote
    diffs = [float(np.mean([g.result("muse", "M3", s).retrieval[l]["t2i_R@1"]
                            - g.result("mbert", "M3", s).retrieval[l]["t2i_R@1"]
                            for l in NON_EN])) for s in (0, 1)]
    assert cell.n == 2 and cell.mean == pytest.approx(np.mean(diffs), abs=1e-9)
    with pytest.raises(KeyError, match="Table 2c has no estimate"):
        estimates("Table 2c", key)  # a number no table printed is an error, never a sentence
    text = findings(g, estimates, studies)
    assert "**mUSE vs mBERT (Table 5b, paired by seed)**" in text
    # Table 5's finding quotes the main tower's rows, and the raw-feature rows apart
    line = next(l for l in text.splitlines() if l.startswith("- **mbert, Table 5"))
    real = t["table5_towers_mbert"].rows[0]
    assert f"real: alignment {real[3]:.1f}, M3 {real[6].mean:.1f}" in line
    assert "mBERT raw features (real): alignment" in line
