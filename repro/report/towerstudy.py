"""Table 5 and Figure 5: how much cross-lingual alignment zero-shot transfer needs, and what
language centering repairs, by evaluation only.

The trained PATR and M3 models of the grid are reused as they are; for every non-English
language their frozen tower's test features are changed before the text head
(:mod:`repro.towers.controlled`): a language offset of size beta or a rotation of size alpha, each
with and without language centering (means from unlabeled non-test text: the training emoji's
names in each language; the English training captions). English never changes. Per condition:
the caption-to-English alignment R@1 of the (changed) tower features on the test items, as in
Table 4's raw column, and the zero-shot non-English text-to-image R@1 / R@10 of PATR and M3.
The perturbed rows are perturbations of a real tower, never another tower.
"""

from __future__ import annotations

import numpy as np
import torch

from repro.design import as_arm, grid_towers, raw_arm
from repro.report import analysis
from repro.report.analysis import STUDY_METHODS, changed_features, study_conditions
from repro.report.common import NON_EN, Difference, data_line, difference, lang_mean
from repro.towers.text import text_tower
from repro.report.table import Table, mean_std
from repro.scoring import metrics


def alignment_r1(feats: dict) -> float:
    """Mean over non-English languages of caption-to-English R@1 (%) of tower features."""
    norm = {l: torch.nn.functional.normalize(x, dim=-1).numpy() for l, x in feats.items()}
    n = norm["en"].shape[0]
    return float(np.mean([100 * np.mean(metrics.ranks(norm[l] @ norm["en"].T, np.arange(n)) <= 1)
                          for l in NON_EN if l in norm]))


def study(grid, tower: str) -> list[dict]:
    """One row per (condition, centering): alignment R@1 and per-seed zero-shot R@1 / R@10 of
    PATR and M3. A tower with raw-feature rows in the grid (:func:`repro.design.raw_arm`)
    adds its real condition on the raw features, the raw-feature PATR and M3 in the arm
    columns (those rows have ``raw`` true)."""
    first = grid.config(tower, "M3")
    name = text_tower(tower).display
    label = name + (" centered on English" if first.text_preprocess == "center_en" else "")
    rows = _rows(grid, tower, grid.tasks[tower], {m: as_arm(m) for m in STUDY_METHODS}, label)
    raw_arms = {m: raw_arm(m) for m in STUDY_METHODS if grid.runs(tower, raw_arm(m))}
    if len(raw_arms) == len(STUDY_METHODS):
        rows += _rows(grid, tower, grid.arm_task(tower, raw_arms["M3"]), raw_arms,
                      f"{name} raw features", raw=True)
    return rows


def _rows(grid, tower: str, task, arms: dict, label: str, raw: bool = False) -> list[dict]:
    """:func:`study`'s rows of ``task``; ``arms``: column -> grid arm; ``raw``: the arms
    trained on the tower's raw features. Each model's numbers are its run's analysis."""
    per_run = {col: [analysis.of(grid, tower, arm, s)["study"] for s in grid.seeds
                     if grid.result(tower, arm, s) is not None] for col, arm in arms.items()}
    rows = []
    for i, (kind, cond, size, centred) in enumerate(study_conditions(task, raw)):
        row = {"kind": kind, "condition": cond, "size": size, "centered": centred,
               "tower": label, "raw": raw,
               "alignment_R@1": alignment_r1(changed_features(task, kind, size, centred))}
        for col, runs in per_run.items():
            assert all((r[i]["kind"], r[i]["size"], r[i]["centered"]) == (kind, size, centred)
                       for r in runs), "an analysis of other conditions"
            row[col] = {k: [r[i][k] for r in runs] for k in ("R@1", "R@10")}
        rows.append(row)
    return rows


def table5(grid, studies: dict) -> list[Table]:
    """Table 5 from :func:`study` rows per tower."""
    out = []
    for tower, rows in studies.items():
        name = text_tower(tower).display
        header = ["tower", "condition", "language centering", "alignment R@1 (non-English)"]
        header += [f"{a} non-English {k}" for a in STUDY_METHODS for k in ("R@1", "R@10")]
        t = Table(f"table5_towers_{tower}", f"Table 5: zero-shot transfer against tower "
                  f"alignment ({name} and perturbations of it)",
                  data_line(grid) + f" Evaluation only: the trained PATR and M3 models of the "
                  f"grid ({name} tower) on test features changed for every non-English language "
                  "before the text head (English unchanged): a language offset x + β u_lang or a "
                  "rotation x exp(α A_lang) (seeded, fixed per language), each with and without "
                  "language centering (x − μ_lang + μ_en, means of the training emoji's names "
                  "in that language and of the English training captions; no image, no test "
                  "text). Alignment R@1: caption-to-English retrieval of the changed tower "
                  "features on the test items (as Table 4's raw column), mean over the 10 "
                  "non-English languages; zero-shot: text-to-image recall (%), mean ± std "
                  "over seeds.", header, labels=3)
        for r in rows:
            tower_label = (f"{r['tower']} (real)" if r["kind"] == "real"
                           else f"perturbed {r['tower']}")
            t.add([tower_label, r["condition"], "yes" if r["centered"] else "no",
                   r["alignment_R@1"]]
                  + [mean_std(r[a][k]) for a in STUDY_METHODS for k in ("R@1", "R@10")])
        t.notes.append("β = 0 and α = 0 without centering is the grid's own evaluation: its "
                       "numbers equal Table 2b's PATR and M3 (tested).")
        t.notes += tower_notes(grid, tower)
        if any(r["raw"] for r in rows):
            lrs = ", ".join(f"{m} lr {grid.config(tower, raw_arm(m)).lr:g}"
                            for m in STUDY_METHODS)
            t.notes.append(f"{name} raw features: PATR and M3 trained on the tower's raw "
                           "features (text_preprocess=none), each at its main arm's settings "
                           "(chosen by the defaults sweep on mUSE's centred features; no "
                           "raw-feature sweep is part of the grid), seeds "
                           + ", ".join(str(s) for s in grid.seeds
                                       if grid.result(tower, raw_arm("M3"), s) is not None)
                           + f" ({lrs}).")
        if not any(r["centered"] for r in rows):
            t.notes.append("language centering not run: this profile has no unlabeled "
                           "non-English text outside the test set")
        out.append(t)
    return out


#: Table 5b's metrics: label, languages, metrics.json key.
PAIR_METRICS = (("non-English R@1", NON_EN, "t2i_R@1"), ("non-English R@10", NON_EN, "t2i_R@10"),
                ("English R@1", ("en",), "t2i_R@1"), ("English R@10", ("en",), "t2i_R@10"))


def tower_pairs(grid) -> list[tuple[str, str]]:
    """(earlier, later) of every two towers that both ran PATR and M3, in grid order."""
    towers = [t for t in grid_towers() if all(grid.runs(t, a) for a in STUDY_METHODS)]
    return [(a, b) for i, a in enumerate(towers) for b in towers[i + 1:]]


def table5b(grid) -> list[Table]:
    """Real towers against each other, paired by seed: per arm (PATR, M3) and metric the two
    towers (mean ± std over seeds) and the difference paired by seed and test item (an
    estimate; the tower axis's verdict is Table 0's). One table per pair of towers that both
    ran PATR and M3."""
    out = []
    for first, second in tower_pairs(grid):
        n1, n2 = (text_tower(t).display for t in (first, second))
        header = ["arm", "metric", n1, n2, f"{n2} − {n1}"]
        t = Table(f"table5b_towers_{second}_vs_{first}",
                  f"Table 5b: {n2} vs {n1}, paired by seed",
                  data_line(grid) + " The grid's PATR and M3 with each real text tower at "
                  "the arm's settings (and the tower's own output preprocessing); text-to-image recall (%), mean ± std over seeds; the "
                  "difference is paired by seed (same batches and image-head "
                  "initialisation).", header, labels=2)
        t.differences[f"{n2} − {n1}"] = (n2, n1)
        for arm in STUDY_METHODS:
            for label, langs, key in PAIR_METRICS:
                t.add([arm, label, mean_std(lang_mean(grid.runs(first, arm), langs, key)),
                       mean_std(lang_mean(grid.runs(second, arm), langs, key)),
                       difference(grid, second, arm, arm, langs, key, b_tower=first)],
                      {f"{n2} − {n1}": Difference.of(second, arm, arm, langs, key, first)})
        t.notes += [f"{text_tower(tw).display}: {n}" for tw in (first, second)
                    for n in tower_notes(grid, tw)]
        out.append(t)
    return out


def tower_notes(grid, tower: str) -> list[str]:
    """What a reader must know about a tower's features (its preprocessing)."""
    cfg = grid.config(tower, "M3")
    if cfg.text_preprocess == "center_en":
        return ["features centered on the English training captions' mean and L2-renormalised "
                "before the head (text_preprocess=center_en, chosen on English validation)"]
    return []
