"""The ablation tables: PATR vs M3 at matched learning rates and two training lengths
(Table 2c), under each protocol of the benchmark (Table 2d), along M3's text-term weight
lambda (the numbers of Figure 3), and against PATR's time on the plateau (Figure 6's numbers).
Differences are paired by seed and test item: estimates with 95% crossed bootstrap intervals
and no verdict (:mod:`repro.scoring.stats`; the verdicts are Table 0's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repro.data.paper import LANGS
from repro.design import (MATCHED_LRS, NOISE_CAPTIONS, Arm, PROTOCOLS, PROTOCOL_LR, long_arm,
                          lr_label, matched_pair, protocol_arm)
from repro.report.cells import Counts, Interval
from repro.report.common import (NON_EN, Difference, data_line, difference, escape_steps,
                                 lang_mean, paired, plateau_count, plateau_note)
from repro.report.figures import (CORRELATION_ALL, CORRELATION_PAPER, lambda_points, matched_pairs,
                                  plateau_exit)
from repro.report.table import Table, mean_std
from repro.scoring.stats import pearson_interval, t_interval


def table2c(grid) -> list[Table]:
    """PATR vs the paper's M3 at each matched learning rate, at the default training length
    and at twice it: per metric the two arms (mean ± std), the paired M3 − PATR difference
    with its verdict, and how many runs ended on the plateau."""
    out = []
    for tower in grid.towers_run:
        cells = []  # (learning rate, PATR arm, M3 arm) of every length that is another model
        unmoved = []  # a sentence per longer pair whose runs all kept their best epoch
        for lr in MATCHED_LRS:
            pair = matched_pair(lr)
            long = tuple(long_arm(a) for a in pair)
            cells += [(lr, *pair)] if all(grid.runs(tower, a) for a in pair) else []
            if all(grid.runs(tower, a) for a in long):
                moved, n = moved_best_epochs(grid, tower, long)
                if moved:
                    cells.append((lr, *long))
                else:
                    unmoved.append(f"at lr {lr_label(lr)}, {grid.config(tower, long[1]).epochs} "
                                   f"epochs: none of the {n} continued runs (PATR and M3) "
                                   "moved its best English-validation epoch past the default "
                                   "length, so they are the default-length models and repeat "
                                   "their rows (not shown)")
        if not cells:
            continue
        header = ["metric", "learning rate", "epochs", "PATR", "M3", "M3 − PATR",
                  "ended on plateau (PATR, M3)"]
        t = Table(f"table2c_length_{tower}",
                  f"Table 2c: PATR vs M3 at two training lengths and matched learning rates ({tower})",
                  data_line(grid) + f" Text tower {tower}. Text-to-image recall (%), mean ± std "
                  "over seeds; PATR and M3 differ only in λ (0 vs 1).", header, labels=3)
        t.differences["M3 − PATR"] = ("M3", "PATR")
        for label, langs, key in DIFFERENCE_ROWS:
            for lr, patr, m3 in cells:
                pr, mr = grid.runs(tower, patr), grid.runs(tower, m3)
                t.add([label, lr_label(lr), str(grid.config(tower, m3).epochs),
                       mean_std(lang_mean(pr, langs, key)), mean_std(lang_mean(mr, langs, key)),
                       difference(grid, tower, m3, patr, langs, key),
                       Counts(f"{plateau_count(pr)}, {plateau_count(mr)}")],
                      {"M3 − PATR": Difference.of(tower, m3, patr, langs, key)})
        for lr, patr, m3 in cells:
            ep = grid.config(tower, m3).epochs
            t.notes.append(f"plateau-escape optimizer step per seed ({', '.join(map(str, grid.seeds))}) "
                           f"at lr {lr_label(lr)}, {ep} epochs: PATR "
                           f"{escape_steps(grid.runs(tower, patr))}; M3 "
                           f"{escape_steps(grid.runs(tower, m3))} (of "
                           f"{grid.runs(tower, m3)[0].steps} steps).")
        t.notes += [f"Twice the training length {u}." for u in unmoved]
        t.notes.append(plateau_note(grid))
        out.append(t)
    return out


def moved_best_epochs(grid, tower: str, arms) -> tuple[int, int]:
    """(k, n): k of the n runs of ``arms`` (longer arms, continuing their base arm's runs)
    whose best epoch lies past their base run's length, i.e. that are another model."""
    moved = n = 0
    for arm in arms:
        base_epochs = grid.config(tower, arm.continues).epochs
        for r in grid.runs(tower, arm):
            n += 1
            moved += r.best_epoch > base_epochs
    return moved, n


#: Table 2d's metrics: label, languages, metrics.json key.
DIFFERENCE_ROWS = (("non-English R@1", NON_EN, "t2i_R@1"), ("non-English R@10", NON_EN, "t2i_R@10"),
                ("English R@1", ("en",), "t2i_R@1"), ("English R@10", ("en",), "t2i_R@10"))


def protocol_rows(grid, tower) -> list[tuple]:
    """(protocol, what changes, PATR runs, M3 runs) of Table 2d for which both arms ran."""
    out = []
    for p in PROTOCOLS.values():
        patr, m3 = (grid.runs(tower, protocol_arm(a, p.name)) for a in ("PATR", "M3"))
        if patr and m3:
            out.append((p.name, p.what, patr, m3))
    return out


def _tagging_map(runs):
    """Table 3's tagging mAP of ``runs``, mean over the languages (mean ± std over seeds), or
    "n/a" where the tower tags nothing."""
    if not runs[0].tagging:
        return "n/a"
    return mean_std([float(np.mean([r.tagging[lang]["mAP"] for lang in LANGS])) for r in runs])


def table2d(grid) -> list[Table]:
    """M3 − PATR under each protocol of :data:`repro.design.PROTOCOLS`: which construction choice
    of the benchmark decides the verdict, the plateau and the escape steps."""
    out = []
    for tower in grid.towers_run:
        rows = protocol_rows(grid, tower)
        if len(rows) < 2:
            continue
        header = ["protocol", "what changes", "epochs", "PATR non-English R@1",
                  "M3 non-English R@1", "M3 tagging mAP"]
        header += [f"{label}: M3 − PATR" for label, _, _ in DIFFERENCE_ROWS]
        header += ["plateau-escape step per seed: PATR", "M3", "ended on plateau (PATR, M3)"]
        t = Table(f"table2d_protocols_{tower}",
                  f"Table 2d: which protocol choice decides M3 vs PATR ({tower})",
                  data_line(grid) + f" Text tower {tower}. Each row trains PATR and M3 (λ = 1) "
                  f"under one protocol at learning rate {lr_label(PROTOCOL_LR)}, differing in λ "
                  "only (v2: the protocol of every other table).", header, labels=3)
        t.differences["non-English R@1: M3 − PATR"] = ("M3 non-English R@1",
                                                       "PATR non-English R@1")
        for name, what, patr, m3 in rows:
            epochs = grid.config(tower, protocol_arm("M3", name)).epochs
            row = [name, what, str(epochs), mean_std(lang_mean(patr, NON_EN, "t2i_R@1")),
                   mean_std(lang_mean(m3, NON_EN, "t2i_R@1")), _tagging_map(m3)]
            row += [difference(grid, tower, protocol_arm("M3", name), protocol_arm("PATR", name),
                               langs, key) for _, langs, key in DIFFERENCE_ROWS]
            row += [escape_steps(patr), escape_steps(m3),
                    Counts(f"{plateau_count(patr)}, {plateau_count(m3)}")]
            t.add(row, {f"{label}: M3 − PATR": Difference.of(
                tower, protocol_arm("M3", name), protocol_arm("PATR", name), langs, key)
                for label, langs, key in DIFFERENCE_ROWS})
        t.notes.append("v1 is the protocol of the first release's tables (all English keywords as "
                       "captions, identical texts of two emoji as negatives, a random split that "
                       "puts near-duplicate emoji on both sides, lr 1e-3, 30 epochs); "
                       + " and ".join(f"'v2, {c}'" for c in NOISE_CAPTIONS)
                       + " train on the caption options the defaults sweep called within noise "
                       "of its choice, for as many optimizer steps as v2. M3 tagging "
                       "mAP: Table 3's measure, mean over the 11 languages.")
        t.notes.append(plateau_note(grid))
        out.append(t)
    return out


def table_lambda(grid) -> list[Table]:
    """The numbers of Figure 3: per matched learning rate and lambda, mean ± std over the
    common seeds, and the 95% t-interval of the main metric."""
    out = []
    for tower in grid.towers_run:
        curves = [(lr, lambda_points(grid, tower, lr)) for lr in MATCHED_LRS]
        curves = [(lr, points) for lr, points in curves if points]
        if not curves:
            continue
        header = ["learning rate", "λ", "arm", "seeds", "non-English R@1",
                  "non-English R@1 95% CI", "non-English R@10", "English R@1", "English R@10",
                  "text-cluster gap x100", "ended on plateau"]
        seeds = sorted(r.seed for r in curves[0][1][0][2])
        t = Table(f"table_lambda_{tower}", f"Figure 3 numbers: M3's text-term weight λ at "
                  f"matched learning rates ({tower})",
                  data_line(grid, seeds)
                  + f" Text tower {tower}. Text-to-image recall (%), mean ± std over seeds; "
                  "text-cluster gap x100: 100 x (mean cosine of two test captions of the same "
                  "item in two languages minus that of different items), after the text head.",
                  header, labels=4)
        t.intervals["non-English R@1 95% CI"] = "non-English R@1"
        for lr, points in curves:
            for lam, arm, runs in points:
                r1 = lang_mean(runs, NON_EN, "t2i_R@1")
                t.add([lr_label(lr), f"{lam:g}", arm.name, str(len(runs)), mean_std(r1),
                       Interval(*t_interval(r1)[1:]) if len(r1) >= 2 else "n/a",
                       mean_std(lang_mean(runs, NON_EN, "t2i_R@10")),
                       mean_std(lang_mean(runs, ("en",), "t2i_R@1")),
                       mean_std(lang_mean(runs, ("en",), "t2i_R@10")),
                       mean_std([100 * r.text_clusters["gap"] for r in runs]),
                       plateau_count(runs)])
        t.notes.append(plateau_note(grid))
        out.append(t)
    return out


@dataclass(frozen=True)
class MechanismPair:
    """A matched pair of Table 6 (configs differing in λ only): PATR's time on the plateau
    (the median escape step, never: its last step) and the mean paired M3 − PATR non-English
    R@1."""

    tower: str
    label: str
    patr: Arm
    m3: Arm
    lam: float
    plateau_exit: float
    diffs: tuple  # per-seed M3 − PATR non-English R@1

    @property
    def mean_diff(self) -> float:
        return float(sum(self.diffs) / len(self.diffs))


def mechanism_pairs(grid) -> list[MechanismPair]:
    """Every matched pair of every tower that ran, in grid order."""
    out = []
    for tower in grid.towers_run:
        for label, patr, m3 in matched_pairs(grid, tower):
            diffs = paired(grid, tower, m3, patr, NON_EN, "t2i_R@1")
            out.append(MechanismPair(tower, label, patr, m3, grid.config(tower, m3).lambda_tt,
                                     plateau_exit(grid.runs(tower, patr)), tuple(diffs)))
    return out


@dataclass(frozen=True)
class Correlation:
    """Pearson's r over ``n`` pairs with its 95% interval (Fisher's z)."""

    pairs: str
    n: int
    r: float
    low: float
    high: float


def mechanism_correlations(pairs: list[MechanismPair]) -> list[Correlation]:
    """Table 6b: over every pair, and over the pairs with the paper's M3 (λ 1); a subset of
    fewer than 4 pairs has none."""
    subsets = [(CORRELATION_ALL, pairs), (CORRELATION_PAPER, [p for p in pairs if p.lam == 1])]
    return [Correlation(name, len(ps), *pearson_interval([p.plateau_exit for p in ps],
                                                         [p.mean_diff for p in ps]))
            for name, ps in subsets if len(ps) >= 4]


def table6(grid) -> list[Table]:
    """The numbers of Figure 6: per matched pair, PATR's time on the plateau and M3 − PATR;
    and the correlation between the two over all pairs, with its 95% interval."""
    pairs = mechanism_pairs(grid)
    if len(pairs) < 2:
        return []
    header = ["tower", "pair", "learning rate", "M3 λ", "PATR plateau-escape step (median)",
              "PATR plateau-escape step per seed", "ended on plateau (PATR, M3)",
              "M3 − PATR non-English R@1"]
    t = Table("table6_mechanism", "Figure 6 numbers: M3 − PATR against PATR's time on the plateau",
              data_line(grid) + " Every pair of runs the grid trained whose configs differ in λ "
              "only (PATR: 0; M3: the paper's 1 in the matched pairs and the protocols, its own "
              "0.1 at its own settings and on raw features); a run that never left the plateau "
              "counts as its last step.", header, labels=4)
    for p in pairs:
        pr, mr = grid.runs(p.tower, p.patr), grid.runs(p.tower, p.m3)
        diff = Difference.of(p.tower, p.m3, p.patr, NON_EN, "t2i_R@1")
        t.add([p.tower, p.label, lr_label(grid.config(p.tower, p.m3).lr), f"{p.lam:g}",
               p.plateau_exit, escape_steps(pr), Counts(f"{plateau_count(pr)}, {plateau_count(mr)}"),
               difference(grid, p.tower, p.m3, p.patr, NON_EN, "t2i_R@1")],
              {"M3 − PATR non-English R@1": diff})
    t.notes.append(plateau_note(grid))
    out = [t]
    correlations = mechanism_correlations(pairs)
    if correlations:
        c = Table("table6b_mechanism_correlation",
                  "Figure 6 numbers: correlation of M3 − PATR with PATR's plateau time",
                  data_line(grid) + " Pearson's r over the pairs of Table 6 (mean paired "
                  "difference against PATR's median escape step), 95% interval by Fisher's z, "
                  "which treats the pairs as independent (some share a PATR run, so the "
                  "interval is optimistic).", ["pairs", "n", "Pearson r", "95% interval"],
                  labels=1)
        for k in correlations:
            c.add([k.pairs, str(k.n), k.r, Interval(k.low, k.high)])
        out.append(c)
    return out
