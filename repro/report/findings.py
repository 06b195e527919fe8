"""``findings.md``, the results index and the README's generated block: factual sentences
computed from the same numbers as the tables (nothing here is written by hand)."""

from __future__ import annotations

import numpy as np

from repro.design import (ARMS, COMPARISONS, MATCHED_LRS, PROTOCOLS, REFERENCE_PROTOCOL,
                          long_arm, lr_label, matched_pair, protocol_arm)
from repro.report.ablation import mechanism_correlations, mechanism_pairs, moved_best_epochs
from repro.report.common import (NON_EN, Difference, escape_steps, lang_mean, mean_non_en,
                                 plateau_count)
from repro.report.figures import CORRELATION_PAPER, lambda_points
from repro.report.table import mean_std
from repro.report.towerstudy import STUDY_METHODS, tower_pairs
from repro.scoring.stats import Estimate
from repro.towers.text import text_tower

#: The metric of most findings: text-to-image recall over the non-English languages.
R1, R10 = (NON_EN, "t2i_R@1"), (NON_EN, "t2i_R@10")


def _text(cell) -> str:
    """A paired cell as the findings quote it; a table's "n/a" / "not run" cell (fewer than 2
    seeds: no statistic) says so."""
    return cell.text() if isinstance(cell, Estimate) else "n/a (fewer than 2 seeds)"


def _side(cell) -> str:
    """Where an estimate's 95% interval lies: 'above 0', 'below 0' or 'includes 0'."""
    return "above 0" if cell.low > 0 else "below 0" if cell.high < 0 else "includes 0"


def _m3_vs_patr(grid, est, tower, lr: float, patr, m3) -> str:
    """One finding line: M3 vs PATR at one matched learning rate and length, as Table 2c
    states it."""
    ms = lambda v: "{:.1f} ± {:.1f}".format(*mean_std(v))  # noqa: E731
    epochs = str(grid.config(tower, m3).epochs)
    d1, d10 = (est("Table 2c", Difference.of(tower, m3, patr, *m)) for m in (R1, R10))
    plateau = (f"PATR {plateau_count(grid.runs(tower, patr))}, "
               f"M3 {plateau_count(grid.runs(tower, m3))}")
    return (f"- **{tower}, does M3 beat PATR at lr {lr_label(lr)}, {epochs} epochs?** "
            f"Non-English t2i R@1 {ms(mean_non_en(grid, tower, m3, 't2i_R@1'))} (M3) vs "
            f"{ms(mean_non_en(grid, tower, patr, 't2i_R@1'))} (PATR), paired M3 − PATR "
            f"{_text(d1)}; R@10 {_text(d10)} (Table 2c). Runs ended on the plateau: "
            f"{plateau}.")


def _median_escape(runs) -> str:
    steps = [r.escape_step for r in runs]
    if any(s is None for s in steps):
        return f"{sum(s is None for s in steps)} of {len(steps)} never left the plateau"
    return f"median {np.median(steps):.0f}"


def _protocol_lines(grid, est, tower) -> list[str]:
    """Table 2d in sentences: per protocol the M3 − PATR verdicts and escape steps, and how far
    each choice moves them from the reference protocol."""
    ran = {p: (protocol_arm("M3", p), protocol_arm("PATR", p)) for p in PROTOCOLS}
    ran = {p: arms for p, arms in ran.items() if all(grid.runs(tower, a) for a in arms)}
    if REFERENCE_PROTOCOL not in ran or len(ran) < 2:  # Table 2d needs two protocols
        return []
    rows = {p: {k: est("Table 2d", Difference.of(tower, *arms, *m))
                for k, m in (("R@1", R1), ("R@10", R10))} for p, arms in ran.items()}
    names = list(rows)
    out = []
    for p in names:
        s1, s10 = rows[p]["R@1"], rows[p]["R@10"]
        patr, m3 = (grid.runs(tower, protocol_arm(a, p)) for a in ("PATR", "M3"))
        moved = "" if p == REFERENCE_PROTOCOL else (
            f"; against {REFERENCE_PROTOCOL} the non-English R@1 difference moves by "
            f"{s1.mean - rows[REFERENCE_PROTOCOL]['R@1'].mean:+.1f} points and R@10 by "
            f"{s10.mean - rows[REFERENCE_PROTOCOL]['R@10'].mean:+.1f}"
            + ("" if (_side(s1), _side(s10)) == (_side(rows[REFERENCE_PROTOCOL]["R@1"]),
                                                 _side(rows[REFERENCE_PROTOCOL]["R@10"]))
               else " (where its interval lies against 0 changes)"))
        out.append(f"- **{tower}, Table 2d, protocol {p}** ({PROTOCOLS[p].what}): M3 − PATR "
                   f"non-English R@1 {s1.text()}; R@10 {s10.text()}; "
                   f"plateau escape PATR {_median_escape(patr)}, M3 {_median_escape(m3)}{moved}.")
    others = [p for p in names if p != REFERENCE_PROTOCOL]
    ref = rows[REFERENCE_PROTOCOL]["R@1"].mean
    biggest = max(others, key=lambda p: abs(rows[p]["R@1"].mean - ref))
    out.append(f"- **{tower}, Table 2d, which choice matters most**: of the protocols tried, "
               f"{biggest} moves the non-English R@1 difference M3 − PATR furthest from "
               f"{REFERENCE_PROTOCOL} ({ref:+.1f} -> {rows[biggest]['R@1'].mean:+.1f}).")
    return out


def _tower_study_line(rows: list[dict], tower: str) -> str:
    """Table 5 in one sentence, from its study rows: the real tower and the strongest offset
    and rotation, with and without centering (alignment R@1; M3's zero-shot non-English R@1),
    and the raw-feature rows."""
    main = [r for r in rows if not r["raw"]]
    cells = {(r["condition"], r["centered"]): (r["alignment_R@1"], mean_std(r["M3"]["R@1"]))
             for r in main}

    def say(condition):
        parts = []
        for centred in (False, True):
            if (condition, centred) in cells:
                align, m3 = cells[(condition, centred)]
                parts.append(f"alignment {align:.1f}, M3 {m3.mean:.1f} ± {m3.std:.1f}"
                             + (" centered" if centred else ""))
        return f"{condition}: " + "; ".join(parts)

    kinds = {r["condition"]: r["kind"] for r in main}
    picks = (["real"] + [c for c in kinds if kinds[c] == "offset"][-1:]
             + [c for c in kinds if kinds[c] == "rotation"][-1:])
    line = (f"- **{tower}, Table 5 (alignment vs zero-shot transfer, evaluation only)**: "
            "caption-to-English alignment R@1 and M3's non-English t2i R@1 — "
            + " | ".join(say(c) for c in picks) + ".")
    for r in (r for r in rows if r["raw"] and r["kind"] == "real" and not r["centered"]):
        patr, m3 = mean_std(r["PATR"]["R@1"]), mean_std(r["M3"]["R@1"])
        line += (f" {r['tower']} (real): alignment {r['alignment_R@1']:.1f}, PATR {patr.mean:.1f} ± "
                 f"{patr.std:.1f}, M3 {m3.mean:.1f} ± {m3.std:.1f} ({m3.n} seeds).")
    return line


def answers(grid, est, found=()) -> list[str]:
    """The answers first: each declared endpoint (Table 0) with its verdict, and the range over
    the settings the sweep could not separate; then what the difference depends on (Figure
    6's correlation) and what the benchmark can answer at all."""
    if not found:
        return []
    out = [f"**The answers first** (the declared endpoints of Table 0; profile {grid.profile}; "
           "verdicts Holm-adjusted over the endpoints, intervals at the level Holm tested each "
           "at):"]
    for a in found:
        out.append(_endpoint_line(a))
    line = _mechanism_line(grid, est)
    if line:
        out.append(line)
    if grid.profile == "mini":
        out.append(_proxy_line(grid))
    return out + [""]


def _endpoint_line(a) -> str:
    """One endpoint: its verdict and interval, the seed-only interval beside the crossed one,
    and its within-noise variants."""
    e, r, v = a.endpoint, a.reading.estimate, a.verdict
    line = (f"- **{e.claim}** {e.setting}, non-English {_metric_name(e.key)}: {r.mean:+.1f} "
            f"[{v.low:+.1f}, {v.high:+.1f}] at {1 - v.level:.1%}, Holm p = {v.p_holm:.2g}: "
            f"**{v.word}** ({r.n} seeds × {r.items} test items; 95% crossed interval "
            f"[{r.low:+.1f}, {r.high:+.1f}], seeds alone [{a.reading.seed_only[0]:+.1f}, "
            f"{a.reading.seed_only[1]:+.1f}]).")
    if a.variants:
        low, high = a.span()
        agree = sum(_sign_of(*iv) == _sign_of(v.low, v.high) for _, iv in a.variants)
        line += (f" At the {len(a.variants)} other settings the sweep could not separate from "
                 f"its choice the difference runs from {low:+.1f} to {high:+.1f}; "
                 + ("at all of them the interval at the same level says what the verdict says."
                    if a.agrees else
                    f"at {agree} of them its interval at the same level says what the verdict "
                    f"says, so **the answer depends on that choice**: the range {low:+.1f} to "
                    f"{high:+.1f} is the answer (Table 0)."))
    return line


def _sign_of(low: float, high: float) -> int:
    return 1 if low > 0 else -1 if high < 0 else 0


def _metric_name(key: str) -> str:
    return "tagging mAP above chance" if key == "mAP" else key.replace("_", " ")


def _proxy_line(grid) -> str:
    """What the mini benchmark can answer (docs/benchmark.md has the table)."""
    return ("- **What these answers are about:** the `mini` proxy, not the paper's data: short "
            "emoji names instead of COCO / XTD10 sentences, 1,249 English training captions "
            "instead of COCO's hundreds of thousands, icons instead of photos, and mUSE and E5 "
            "(no mBERT weights here). They speak to the methods' behaviour on this benchmark; "
            "they are not the paper's numbers (docs/benchmark.md says which claims the proxy "
            "can and cannot answer).")


def _mechanism_line(grid, est) -> str | None:
    """Figure 6 in one sentence: does "M3 helps where PATR leaves the plateau late, and not
    otherwise" hold? From Table 6's pairs (where each pair's 95% interval lies) and Table
    6b's correlations (the paper's M3's where it has its own); None when Table 6b is empty.
    An estimate, not an endpoint: no verdict word."""
    pairs = mechanism_pairs(grid)
    correlations = mechanism_correlations(pairs)
    if len(pairs) < 2 or not correlations:
        return None
    cells = [est("Table 6", Difference.of(p.tower, p.m3, p.patr, *R1)) for p in pairs]
    cells = [c for c in cells if isinstance(c, Estimate)]
    helped = sum(c.low > 0 for c in cells)
    main = next((c for c in correlations if c.pairs == CORRELATION_PAPER), correlations[0])
    name, n, r, rises = main.pairs, main.n, main.r, main.low > 0
    if not helped:
        verdict = f"it does not hold: M3 is ahead (95% interval above 0) in none of the {len(cells)} pairs" + (
            "; M3 − PATR does rise with PATR's time on the plateau: where PATR leaves it late, "
            "M3 loses less" if rises else "; nor is a rise of M3 − PATR with PATR's time on the "
            "plateau shown (the correlation's interval includes 0)")
    elif rises:
        verdict = ("it holds: M3 − PATR rises with PATR's time on the plateau, and M3 is ahead "
                   f"(95% interval above 0) in {helped} of the {len(cells)} pairs")
    else:
        verdict = (f"it is not shown: M3 is ahead (95% interval above 0) in {helped} of the "
                   f"{len(cells)} pairs, but the correlation's interval includes 0")
    others = "; ".join(f"{c.pairs} ({c.n}): {c.r:+.2f} [{c.low:+.2f}, {c.high:+.2f}]"
                       for c in correlations if c is not main)
    return (f"- **\"M3 helps where PATR leaves the plateau late, and not otherwise\"** (Figure 6, "
            f"Tables 6 and 6b): over the {n} {name}, Pearson r between PATR's plateau-escape step "
            f"and M3 − PATR non-English R@1 is {r:+.2f} [95% {main.low:+.2f}, {main.high:+.2f}]"
            + (f" ({others})" if others else "") + f": {verdict}.")


def findings(grid, est, studies: dict, clusters: dict | None = None, found=()) -> str:
    """Factual sentences computed from the grid's numbers (the same numbers as the tables).
    Paired differences are quoted from the tables' registered cells (``est``: a
    :class:`~repro.report.common.Estimates`; one that no table printed is an error); verdicts
    only from the declared endpoints (``found``: Table 0's answers).

    ``studies``: tower -> Table 5's study rows; ``clusters``: tower -> Figure 1 panel ->
    cluster statistics, when the figure was drawn.
    """

    lines = answers(grid, est, found) + [
        f"Profile **{grid.profile}**, seeds {', '.join(map(str, grid.seeds))} (the endpoints' "
        "arms; other arms the first five or three); \"non-English\" is the mean over the 10 "
        "languages other than English; ± is the sample std over seeds; differences are paired "
        "by seed and test item, with a 95% crossed bootstrap interval over seeds and test "
        "items. Below, every difference is an estimate: the verdicts are the endpoints' above."]
    for tower, why in grid.not_run.items():
        lines.append(f"- **{tower}**: not run ({why.split('. ')[0]}).")
    for tower in grid.towers_run:
        have = {a for a in tuple(ARMS) if grid.runs(tower, a)}
        r1 = {a: mean_non_en(grid, tower, a, "t2i_R@1") for a in have}
        r10 = {a: mean_non_en(grid, tower, a, "t2i_R@10") for a in have}
        ms = lambda v: "{:.1f} ± {:.1f}".format(*mean_std(v))  # noqa: E731
        for lr in MATCHED_LRS:
            pair = matched_pair(lr)
            long = tuple(long_arm(a) for a in pair)
            for arms in (pair, long):
                if not all(grid.runs(tower, a) for a in arms):
                    continue
                if arms == long and not moved_best_epochs(grid, tower, long)[0]:
                    lines.append(f"- **{tower}, twice the training length at lr {lr_label(lr)}**: "
                                 "no continued run moved its best epoch past the default "
                                 "length, so those are the default-length models (Table 2c).")
                    continue
                lines.append(_m3_vs_patr(grid, est, tower, lr, *arms))
        lines += _protocol_lines(grid, est, tower)
        for lr in MATCHED_LRS:
            points = lambda_points(grid, tower, lr)
            if not points:
                continue
            best = max(points, key=lambda p: float(np.mean(lang_mean(p[2], NON_EN, "t2i_R@1"))))
            lines.append(f"- **{tower}, λ curve at lr {lr_label(lr)} (Figure 3)**: non-English "
                         "R@1 by λ: " + "; ".join(
                             f"{lam:g}: {ms(lang_mean(runs, NON_EN, 't2i_R@1'))}"
                             for lam, _, runs in points)
                         + f" ({len(points[0][2])} seeds each); highest mean at λ = {best[0]:g}; "
                         "text-cluster gap: " + "; ".join(
                             f"{lam:g}: {np.mean([r.text_clusters['gap'] for r in runs]):.3f}"
                             for lam, _, runs in points) + ".")
        for arm in sorted(have, key=tuple(ARMS).index):
            runs = grid.runs(tower, arm)
            n = sum(r.ended_on_plateau for r in runs)
            lines.append(f"- **{tower}, {arm}**: ended on the plateau in {n} of {len(runs)} "
                         f"seeds (plateau left at step {escape_steps(runs)} of {runs[0].steps}); "
                         f"non-English R@1 {ms(r1[arm])}, R@10 {ms(r10[arm])}.")
        for a, b in COMPARISONS[1:]:
            if {a, b} <= have:
                d = est("Table 2b", Difference.of(tower, a, b, *R1))
                lines.append(f"- **{tower}, {a} − {b}**: non-English R@1 {_text(d)} "
                             "(Table 2b paired).")
        for panel, st in (clusters or {}).get(tower, {}).items():
            lines.append(f"- **{tower}, text clusters (Figure 1), {panel}**: same-item "
                         f"cross-lingual cosine {st['same']:.3f}, different-item {st['diff']:.3f}, "
                         f"gap {st['gap']:.3f}, separation {st['separation']:.2f}.")
        if tower in studies:
            lines.append(_tower_study_line(studies[tower], tower))
        runs = grid.runs(tower, "M3")
        if runs and runs[0].alignment_xtd10:
            raw = float(np.mean([runs[0].alignment_xtd10[l]["raw_R@1"] for l in NON_EN]))
            head = [float(np.mean([r.alignment_xtd10[l]["head_R@1"] for l in NON_EN]))
                    for r in runs]
            lines.append(f"- **{tower}, text alignment (Table 4)**: XTD10 caption-to-English R@1, "
                         f"mean over non-English languages: raw tower {raw:.1f}, after the M3 text "
                         f"head {ms(head)}.")
        if runs and runs[0].tagging:
            maps = [float(np.mean([r.tagging[l]["mAP"] for l in NON_EN])) for r in runs]
            en = [r.tagging["en"]["mAP"] for r in runs]
            lines.append(f"- **{tower}, tagging (Table 3)**: M3 mAP {ms(en)} in English, "
                         f"{ms(maps)} averaged over the other languages.")
            per_variant = "; ".join(
                f"{v} {ms([float(np.mean([r.tagging[l]['mAP'] for l in NON_EN])) for r in grid.runs(tower, v)])}"
                for v in tuple(ARMS) if grid.runs(tower, v))
            lines.append(f"- **{tower}, tagging for every variant (Table 3b)**: non-English mAP: "
                         f"{per_variant}.")
    lines += _tower_pair_lines(grid, est)
    return "\n".join(lines) + "\n"


def _tower_pair_lines(grid, est) -> list[str]:
    """Table 5b in sentences: each later tower against each earlier one, paired by seed."""
    out = []
    for first, second in tower_pairs(grid):
        n1, n2 = (text_tower(t).display for t in (first, second))
        parts = []
        for arm in STUDY_METHODS:
            for metric, langs in (("non-English R@1", NON_EN), ("English R@1", ("en",))):
                cell = est("Table 5b", Difference.of(second, arm, arm, langs, "t2i_R@1", first))
                a, b = (mean_std(lang_mean(grid.runs(t, arm), langs, "t2i_R@1"))
                        for t in (first, second))
                parts.append(f"{arm} {metric} {b.mean:.1f} vs {a.mean:.1f}, {n2} − {n1} "
                             f"{_text(cell)}")
        out.append(f"- **{n2} vs {n1} (Table 5b, paired by seed)**: " + "; ".join(parts) + ".")
    return out


def results_index(grid, tables: list, figures: list[str], findings_text: str) -> str:
    """paper_tables/README.md: the findings, every table (in the order written) and every
    figure of the grid, generated (never edited by hand)."""
    parts = [f"# Results of the `{grid.profile}` profile", "",
             "Generated by `python -m repro reproduce` (see `manifest.json` for the commit, "
             "versions, data checksums and timings); every table is also a CSV beside this "
             "file. Never edit these files by hand: `nox -s check` compares a rerun with them.",
             "", "## Findings", "", findings_text.strip(), "", "## Tables", ""]
    parts += [t.markdown() for t in tables]
    parts += ["## Figures", ""]
    parts += [f"![{name}]({name})" for name in figures if name.endswith(".png")]
    return "\n".join(parts) + "\n"


def readme_answers(findings_text: str, figures: list[str]) -> str:
    """The README's generated block: the answers (the opening paragraph of the findings) and
    the Markdown lines of the figures it shows."""
    answers = findings_text.split("\n\n")[0]
    return "\n\n".join([answers, *figures])
