"""The paper profile end to end on a generated fixture: tiny COCO 2014 + tiny XTD10-format
test set, random-init ResNet-18, tiny random BERT; training, evaluation, tables."""

import hashlib

import pytest

from conftest import call_main, make_coco
from repro.data import paper
from repro.experiments import reproduce
from repro.report import outputs
from repro.report.table import Table
from repro.report.cells import MeanStd


@pytest.fixture
def paper_fixture(tmp_path):
    coco = tmp_path / "coco"
    train_ids, val_ids, xtd_ids = list(range(1, 25)), list(range(30, 40)), [3, 5, 31, 33]
    make_coco(coco, {"train2014": train_ids, "val2014": val_ids})
    xtd = tmp_path / "xtd"
    names = [f"COCO_{'train2014' if i < 30 else 'val2014'}_{i:012d}.jpg" for i in xtd_ids]
    files = {paper.XTD10_IMAGES: names}
    for lang in paper.LANGS:
        files[paper.xtd10_caption_path(lang)] = [f"{lang} caption of image {i}" for i in xtd_ids]
    sums = []
    for rel, lines in files.items():
        p = xtd / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\r\n".join(lines))  # CRLF without final newline, like the real files
        sums.append(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {rel}")
    (xtd / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    return coco, xtd, xtd_ids


#: PATR and M3 at their own settings (Tables 1, 2b, Figure 1) and the matched pair at lr 1e-3
#: at twice the length (Table 2c).
ARMS = ("PATR", "M3", "PATR @lr 1e-3 2x epochs", "M3 λ=1 @lr 1e-3 2x epochs")


def test_paper_profile_end_to_end(paper_fixture, tiny_bert, tmp_path, monkeypatch):
    coco, xtd, xtd_ids = paper_fixture
    monkeypatch.setenv("XLIR_COCO_DIR", str(coco))
    monkeypatch.setenv("XLIR_XTD10_DIR", str(xtd))
    sets = ["image_backbone=resnet18", "image_weights=none", f"mbert_id={tiny_bert}",
            "mbert_download=false", f"xtd10_root={xtd}", f"xtd10_sums={xtd / 'SHA256SUMS'}",
            "coco_val_images=4", "epochs=2", "batch_size=8", "threads=2"]
    grid = reproduce.run_grid("auto", tmp_path / "runs", seeds=(0, 1), arms=ARMS,
                              towers=("mbert",), sets=sets, log=lambda m: None, jobs=1)
    assert grid.profile == "paper" and "COCO 2014 found" in grid.reason
    task = grid.tasks["mbert"]
    assert task.image_feat_dim == 512 and task.text_dim == 32
    assert task.test_images.shape[0] == len(xtd_ids)
    # No XTD10 image reaches training: 24 + 10 images, minus 4 XTD10, minus 4 validation.
    assert task.train_images.shape[0] == 34 - 4 - 4
    m = grid.result("mbert", "M3", 0)
    assert m.profile == "paper" and set(m.retrieval) == set(paper.LANGS)
    assert m.tagging == {} and m.notes["tagging"][0].startswith("tagging not run")
    written = outputs.write_all(grid, tmp_path / "tables")
    assert "table1_main.md" in written and "figure1_text_clusters_mbert.png" in written
    assert "table2c_length_mbert.md" in written and "figure4_training_mbert.png" in written
    t2c = (tmp_path / "tables" / "table2c_length_mbert.md").read_text()
    # the twice-as-long row only where a continued run moved its best epoch (another model)
    from repro.design import long_arm, matched_pair
    from repro.report.ablation import moved_best_epochs

    moved, n = moved_best_epochs(grid, "mbert", tuple(long_arm(a) for a in matched_pair(1e-3)))
    assert "| non-English R@1 | 1e-3 | 2 |" in t2c
    assert ("| non-English R@1 | 1e-3 | 4 |" in t2c) == (moved > 0)
    assert moved > 0 or f"none of the {n} continued runs (PATR and M3) moved" in t2c
    t2 = (tmp_path / "tables" / "table2_ablation.md").read_text()
    assert "Profile **paper**" in t2 and "published mUSE M3" in t2 and "85.3" in t2
    assert "muse" in t2  # the muse columns exist (not run in this test: towers=("mbert",))
    t3 = (tmp_path / "tables" / "table3_tagging.md").read_text()
    assert "not run" in t3
    assert not any(w.startswith("table3b") for w in written)  # no tag ground truth in paper
    # the same grid again: every run is reused, nothing retrained
    again = reproduce.run_grid("auto", tmp_path / "runs", seeds=(0, 1), arms=ARMS,
                               towers=("mbert",), sets=sets, log=lambda m: None, jobs=1)
    assert all(s["step"].startswith(("reused", "features")) for s in again.steps)
    assert again.results == grid.results
    findings = (tmp_path / "tables" / "findings.md").read_text()
    assert "Profile **paper**" in findings and "mbert, does M3 beat PATR at lr 1e-3, 2 epochs?" in findings
    assert "muse**: not run (not part of this grid" in findings


def test_table_csv_splits_mean_and_std(tmp_path):
    t = Table("t", "T", "caption", ["lang", "A", "B"])
    t.add(["en", MeanStd(1.0, 0.5, 5), "x"])
    t.add(["de", "not run", 2.0])
    t.write(tmp_path)
    rows = (tmp_path / "t.csv").read_text().splitlines()
    assert rows == ["lang,A mean,A std,B", "en,1.0000,0.5000,x", "de,not run,,2.0000"]
    assert "| en | 1.0 ± 0.5 | x |" in (tmp_path / "t.md").read_text()


def test_paper_defaults_sweep_on_the_fixture(paper_fixture, tiny_bert, monkeypatch, capsys,
                                             tmp_path):
    """``python -m repro.bench defaults --profile paper``: the declared grid on COCO's English
    validation split (here one arm of it on the fixture), 3 seeds, a choice per arm."""
    from repro.experiments import sweep

    coco, xtd, _ = paper_fixture
    monkeypatch.setenv("XLIR_COCO_DIR", str(coco))
    sets = ["image_backbone=resnet18", "image_weights=none", "text_tower=mbert",
            f"mbert_id={tiny_bert}", "mbert_download=false", f"xtd10_root={xtd}",
            f"xtd10_sums={xtd / 'SHA256SUMS'}", "coco_val_images=4", "epochs=1",
            "batch_size=8", "threads=2"]
    out = sweep.bench_defaults_paper(sets, arms=["PATR"], out=str(tmp_path / "s.jsonl"))
    rows = out["rows"]
    assert [r["settings"].split()[-1] for r in rows] == [f"lr={lr}" for lr in sweep.SWEEP_LRS]
    assert all(len(r["val_rsum_per_seed"].split(", ")) == len(sweep.SWEEP_SEEDS) for r in rows)
    assert sum(r["chosen"] == "yes" for r in rows) == 1
    assert "chosen per arm (paper profile" in capsys.readouterr().out


def test_paper_defaults_sweep_without_coco_is_one_line(monkeypatch, capsys):
    from repro.bench import suite

    monkeypatch.delenv("XLIR_COCO_DIR", raising=False)
    out = call_main(suite.main, ["defaults", "--profile", "paper"], capsys)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: the paper profile needs --set coco_root=DIR (annotations/, train2014/, "
        "val2014/); see docs/paper_profile.md"]
