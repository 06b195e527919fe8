"""The paper's tables of ``paper_tables/`` (Markdown + CSV) from a finished grid.

Tables 1-4 follow the paper (main results, PATR vs M3 ablation, tagging, alignment); 2b and 3b
add the baselines beyond the paper; the ablation tables (2c, 2d, lambda) are
:mod:`repro.report.ablation`.
"""

from __future__ import annotations

import numpy as np

from repro.data.paper import LANGS
from repro.design import (ARMS, COMPARISONS, MATCHED_LRS, lr_label, matched_pair,
                          settings_label, tower_plan)
from repro.report.common import (NON_EN, PUBLISHED_R10, Difference, arm_notes, data_line,
                                 difference, lang_mean, not_run_notes, paired, plateau_mark,
                                 plateau_note)
from repro.report.endpoints import chance_scores
from repro.report.table import Table, mean_std
from repro.report.towerstudy import tower_notes
from repro.scoring.stats import MIN_PAIRED_N


# ----------------------------------------------------------------------------- paper tables

def towers_with(grid, *arms) -> list[str]:
    """The towers that ran every one of ``arms``, in grid order (a table's columns)."""
    return [t for t in grid.towers_run if all(grid.runs(t, a) for a in arms)]


def left_out_notes(grid, *arms) -> list[str]:
    """Once per table: each tower of the grid that has no column in it, and why."""
    notes = not_run_notes(grid)
    shown = towers_with(grid, *arms)
    for tower in (t for t in grid.towers_run if t not in shown):
        why = tower_plan(tower).why or "its grid does not run these arms"
        notes.append(f"{tower}: not in this table: {why}")
    return notes


def _m3_table(grid, name: str, title: str, caption: str, towers: list[str], section: str,
              metrics: dict) -> Table:
    """Tables 1 and 3: per language and the mean over all 11, M3's mean ± std over seeds of
    each metric (label -> key of the run's ``section``) on every tower of ``towers``."""
    header = ["language"] + [f"{tower} M3{plateau_mark(grid.runs(tower, 'M3'))} {m}"
                             for tower in towers for m in metrics]
    t = Table(name, title, data_line(grid) + caption, header)
    for lang in LANGS + ("mean",):
        langs = LANGS if lang == "mean" else (lang,)
        row = [lang]
        for tower in towers:
            runs = grid.runs(tower, "M3")
            row += [mean_std([float(np.mean([getattr(r, section)[l][key] for l in langs]))
                              for r in runs]) for key in metrics.values()]
        t.add(row)
    t.notes.append(plateau_note(grid))
    t.notes += left_out_notes(grid, "M3")
    return t


def table1(grid) -> Table:
    towers = towers_with(grid, "M3")
    t = _m3_table(grid, "table1_main", "Table 1: zero-shot text-to-image retrieval (M3)",
                  " Text-to-image recall (%) per language, mean ± std over seeds; training saw "
                  "English only.", towers, "retrieval",
                  {f"R@{k}": f"t2i_R@{k}" for k in (1, 5, 10)})
    t.notes.insert(0, chance_note(grid))
    t.notes.insert(0, "M3 at its own settings, chosen on English validation: " + "; ".join(
        f"{tower} {settings_label(grid.config(tower, 'M3'))}" for tower in towers)
        + " (the paper's λ is 1: Table 2).")
    return t


def table2(grid) -> Table:
    """The ablation proper: PATR and the paper's M3 (λ = 1) at each matched learning rate,
    everything else equal; per language R@10 of both and M3 − PATR paired by seed and test
    item (an estimate; the verdicts are Table 0's)."""
    pairs = [matched_pair(lr) for lr in MATCHED_LRS]
    towers = towers_with(grid, *(a for pair in pairs for a in pair))
    header = ["learning rate", "language"]
    for tower in towers:
        header += [f"{tower} PATR R@10", f"{tower} M3 R@10", f"{tower} M3 − PATR (paired)"]
    paper = grid.profile == "paper"
    if paper:
        header += ["published mUSE PATR", "published mUSE M3"]
    t = Table("table2_ablation", "Table 2: loss ablation, PATR (λ = 0) vs M3 (λ = 1) at matched "
              "learning rates", data_line(grid) + " Text-to-image R@10 (%), mean ± std over seeds; "
              "PATR and M3 differ only in λ (μ_t 0.5); the difference is paired by seed (same "
              "initialisation and batches).", header, labels=2)
    for tower in towers:
        t.differences[f"{tower} M3 − PATR (paired)"] = (f"{tower} M3 R@10", f"{tower} PATR R@10")
    for lr, (patr, m3) in zip(MATCHED_LRS, pairs):
        for lang in LANGS + ("mean",):
            langs = LANGS if lang == "mean" else (lang,)
            row = [lr_label(lr), lang]
            for tower in towers:
                row += [mean_std(lang_mean(grid.runs(tower, arm), langs, "t2i_R@10"))
                        for arm in (patr, m3)]
                row.append(difference(grid, tower, m3, patr, langs, "t2i_R@10"))
            if paper:
                pub = (PUBLISHED_R10[a].get(lang) for a in ("PATR", "M3"))
                row += [v if v is not None else "n/a" for v in pub]
            t.add(row)
    if paper:
        t.notes.append("published: the paper's mUSE models as quoted in AltCLIP (arXiv:2211.06679, "
                       "Table 3); de, pl, tr and the mean are not available there.")
    t.notes.append(plateau_note(grid))
    t.notes += left_out_notes(grid, *(a for pair in pairs for a in pair))
    return t


def _number_word(n: int) -> str:
    """3 -> 'three' (up to ten), else the digits."""
    words = "zero one two three four five six seven eight nine ten".split()
    return words[n] if n < len(words) else str(n)


def table2b(grid) -> list[Table]:
    tables = []
    for tower in grid.towers_run:
        ran = [v for v in tuple(ARMS) if grid.runs(tower, v)]  # e5: PATR and M3 only
        pairs = [(a, b) for a, b in COMPARISONS if a in ran and b in ran]
        header = ["language"] + [f"{v}{plateau_mark(grid.runs(tower, v))} {m}"
                                 for v in ran for m in ("R@1", "R@10")]
        which = f"{_number_word(len(ran))} variants" if len(ran) == len(tuple(ARMS)) else ", ".join(ran)
        t = Table(f"table2b_variants_{tower}", f"Table 2b: beyond the paper, {which} ({tower})",
                  data_line(grid) + f" Text tower {tower}. Text-to-image R@1 and R@10 (%), "
                  "mean ± std over seeds.", header)
        rows = [(l, (l,)) for l in LANGS] + [("mean non-English", NON_EN), ("mean all", LANGS)]
        for label, langs in rows:
            row = [label]
            for v in ran:
                for k in (1, 10):
                    row.append(mean_std(lang_mean(grid.runs(tower, v), langs, f"t2i_R@{k}")))
            t.add(row)
        t.notes.append("Each variant at its own settings, chosen on English validation by the "
                       "defaults sweep: " + "; ".join(f"{v} {settings_label(grid.config(tower, v))}"
                                                      for v in ran) + ".")
        t.notes.append(plateau_note(grid))
        t.notes += [f"{v}: " + n for v in ran for n in arm_notes(grid, tower, v)]
        tables.append(t)
        common = {(a, b): [s for s in grid.seeds if grid.result(tower, a, s) is not None
                           and grid.result(tower, b, s) is not None] for a, b in pairs}
        for k in (1, 10):
            header = ["language"]
            for a, b in pairs:
                header += [f"{a} − {b} seed {s}" for s in common[(a, b)]] + [f"{a} − {b}"]
            p = Table(f"table2b_paired_R{k}_{tower}",
                      f"Table 2b (paired): per-seed differences of t2i R@{k} ({tower})",
                      data_line(grid) + f" Text tower {tower}. Differences in R@{k} points, "
                      "same seed on both sides, on the seeds both arms ran.", header)
            for a, b in pairs:
                p.derived[f"{a} − {b}"] = [f"{a} − {b} seed {s}" for s in common[(a, b)]]
            for label, langs in rows:
                row = [label]
                for a, b in pairs:
                    d = paired(grid, tower, a, b, langs, f"t2i_R@{k}")
                    if len(d) >= MIN_PAIRED_N:
                        row += d + [difference(grid, tower, a, b, langs, f"t2i_R@{k}")]
                    else:
                        row += ["not run"] * (len(common[(a, b)]) + 1)
                p.add(row, {f"{a} − {b}": Difference.of(tower, a, b, langs, f"t2i_R@{k}")
                            for a, b in pairs})
            tables.append(p)
    for t in tables[:1]:
        t.notes += not_run_notes(grid)
    if not tables:
        t = Table("table2b_variants", "Table 2b: beyond the paper", data_line(grid), ["tower", "status"])
        for tower, why in grid.not_run.items():
            t.add([tower, f"not run: {why}"])
        tables.append(t)
    return tables


def table3(grid) -> Table:
    tagged = _tagged(grid)
    t = _m3_table(grid, "table3_tagging", "Table 3: zero-shot image tagging (M3)",
                  " Each test image ranks the whole keyword vocabulary of the language (CLDR "
                  "keywords); its own keywords are the ground truth. Percent, mean ± std over "
                  "seeds. Only English text was seen in training.", tagged, "tagging",
                  {k: k for k in ("P@1", "P@5", "mAP")})
    if tagged:
        t.notes.insert(0, tagging_chance_note(grid, tagged[0]))
    untagged = [grid.runs(tower, "M3")[0] for tower in towers_with(grid, "M3")
                if tower not in tagged]
    t.notes[:0] = [n for r in untagged for n in r.notes.get("tagging", [])]
    return t


def chance_note(grid) -> str:
    """Text-to-image recall of a random ranking: K over the number of test images."""
    n = grid.tasks[grid.towers_run[0]].test_images.shape[0]
    return (f"Chance (a random ranking of the {n} test images): R@1 {100 / n:.1f}%, R@5 "
            f"{500 / n:.1f}%, R@10 {1000 / n:.1f}%.")


def tagging_chance_note(grid, tower: str) -> str:
    """Tagging mAP of a random ranking of each language's vocabulary (expected AP per image)."""
    task = grid.tasks[tower]
    per = {l: float(np.mean(chance_scores(task, (l,)))) for l in LANGS if l in task.tags}
    return ("Chance mAP (the expected AP of a random ranking of the language's vocabulary, "
            "per image): " + ", ".join(f"{l} {v:.2f}" for l, v in per.items()) + ".")


def _tagged(grid) -> list[str]:
    """The towers whose M3 runs tagged (Table 3's columns)."""
    return [t for t in towers_with(grid, "M3") if grid.runs(t, "M3")[0].tagging]


def table3b(grid) -> list[Table]:
    """Tagging for every variant (beyond the paper): per language P@5 and mAP."""
    out = []
    for tower in grid.towers_run:
        if not any(r.tagging for r in grid.runs(tower, "M3")):
            continue
        ran = [v for v in tuple(ARMS) if grid.runs(tower, v)]
        header = ["language"] + [f"{v}{plateau_mark(grid.runs(tower, v))} {m}"
                                 for v in ran for m in ("P@5", "mAP")]
        t = Table(f"table3b_tagging_variants_{tower}",
                  f"Table 3b: zero-shot tagging for every variant ({tower})",
                  data_line(grid) + f" Text tower {tower}. As Table 3 (percent, mean ± std "
                  "over seeds), for each training variant.", header)
        for label, langs in [(l, (l,)) for l in LANGS] + [("mean non-English", NON_EN)]:
            row = [label]
            for v in ran:
                for key in ("P@5", "mAP"):
                    row.append(mean_std([float(np.mean([r.tagging[l][key] for l in langs]))
                                         for r in grid.runs(tower, v)]))
            t.add(row)
        t.notes.append(plateau_note(grid))
        out.append(t)
    return out


def table4(grid, section: str, name: str, title: str, what: str) -> Table:
    towers = [t for t in towers_with(grid, "M3") if getattr(grid.runs(t, "M3")[0], section)]
    ran = {t: [v for v in tuple(ARMS) if grid.runs(t, v)] for t in towers}
    header = ["language"]
    for tower in towers:
        header += [f"{tower} raw tower R@1", f"{tower} raw tower R@10"]
        header += [f"{tower} {v}{plateau_mark(grid.runs(tower, v))} R@1" for v in ran[tower]]
        header += [f"{tower} M3 R@10"]
    t = Table(name, title, data_line(grid) + f" {what} Caption-to-English-caption retrieval "
              "(%) from each language: the frozen tower before any training (raw) and after each "
              "variant's trained text head (mean over seeds).", header)
    for lang in NON_EN + ("mean",):
        langs = NON_EN if lang == "mean" else (lang,)
        row = [lang]
        for tower in towers:
            runs = grid.runs(tower, "M3")
            align = lambda r, key: float(np.mean([getattr(r, section)[l][key] for l in langs]))  # noqa: E731
            row += [align(runs[0], "raw_R@1"), align(runs[0], "raw_R@10")]
            for v in ran[tower]:
                row.append(mean_std([align(r, "head_R@1") for r in grid.runs(tower, v)]))
            row.append(mean_std([align(r, "head_R@10") for r in runs]))
        t.add(row)
    t.notes.append("text_head=none leaves the tower's space untouched, so its value equals the "
                   "raw tower's.")
    t.notes += [f"{tower}: {n}; its raw columns are these features (Table 5 has its raw "
                "features)" for tower in towers for n in tower_notes(grid, tower)]
    t.notes.append(plateau_note(grid))
    for tower in grid.towers_run:
        runs = grid.runs(tower, "M3")
        if runs and not getattr(runs[0], section):
            t.notes += runs[0].notes.get("alignment", [])
    t.notes += left_out_notes(grid, "M3")
    t.notes += [f"{tower}: {', '.join(v for v in tuple(ARMS) if v not in ran[tower])} not run "
                f"({tower_plan(tower).why})" for tower in towers if ran[tower] != list(tuple(ARMS))]
    return t
