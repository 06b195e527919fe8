"""Figures of ``paper_tables/`` (PNG, matplotlib, no timestamps):

1. text clusters of test captions in 11 languages (raw tower, PATR, M3);
2. text-to-image recall@K curves per language (M3);
3. the lambda curve: M3's text-term weight against retrieval and cluster tightness;
4. training curves: English validation R-sum and the cosine gap per optimizer step, PATR vs M3
   at twice the default length, with each run's plateau-escape step marked;
2d. M3 − PATR under each protocol of Table 2d, with the plateau-escape steps;
6. the mechanism: M3 − PATR of every matched pair against PATR's time on the loss plateau.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from repro.core.drawing import fit_width, place_labels, pyplot
from repro.core.fileio import save_png
from repro.data.paper import LANGS
from repro.design import (CURVE_LAMBDAS, MATCHED_LRS, PROTOCOLS, REFERENCE_PROTOCOL, Arm,
                          as_arm, curve_arm, long_arm, lr_label, matched_pair, protocol_arm,
                          raw_arm)
from repro.report import analysis
from repro.report.common import NON_EN, lang_mean, paired
from repro.scoring.stats import t_interval
from repro.towers.text import text_tower
from repro.training.evaluation import RANKS_FILE, read_ranks


def finish_figure(fig, out: Path, name: str, title: str | None = None) -> str:
    """Title (if any, wrapped to the figure's width), lay out, write ``out/name`` as PNG and
    close the figure; returns name."""
    if title is not None:
        set_title(fig, title)
    save_png(fig, out / name)
    pyplot().close(fig)
    return name


def set_title(fig, title: str, fontsize: float = 10) -> None:
    """``title`` above the figure, wrapped to its width (:func:`repro.core.drawing.fit_width`),
    then the axes laid out below it (tight_layout)."""
    fit_width(fig, fig.suptitle(title, fontsize=fontsize))
    fig.tight_layout()


def figure1(grid, out: Path, tower: str) -> tuple[str, dict]:
    """Text clusters: 2-D PCA of 8 test items' captions in 11 languages, raw / PATR / M3."""
    plt = pyplot()
    task = grid.tasks[tower]
    seed = grid.seeds[0]
    panels = {"raw tower": analysis.cluster_panel(
        {l: torch.nn.functional.normalize(ts.feats, dim=-1).numpy()
         for l, ts in task.test_text.items()}, task)}
    for arm in ("PATR", "M3"):
        panels[f"{arm} (seed {seed})"] = analysis.of(grid, tower, arm, seed)["clusters"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    stats = {}
    for ax, (name, panel) in zip(axes, panels.items()):
        st, xy, n = panel["stats"], np.asarray(panel["xy"]), panel["items"]
        stats[name] = st
        colors = plt.cm.tab10(np.arange(n) % 10)
        for j, lang in enumerate(LANGS):
            sl = slice(j * n, (j + 1) * n)
            ax.scatter(xy[sl, 0], xy[sl, 1], c=colors, s=30, marker="o" if lang == "en" else ".")
        ax.set_title(f"{name}\ngap {st['gap']:.3f}, separation {st['separation']:.2f}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    name = finish_figure(fig, out, f"figure1_text_clusters_{tower}.png",
                   f"Figure 1 ({grid.profile} profile, {tower}): captions of 8 test items in 11 "
                   "languages, one colour per item (gap and separation over all test items)")
    return name, stats


def figure2(grid, out: Path, tower: str) -> str:
    """Recall@K curves (t2i) per language for M3, seed 0, from the run's per-query ranks."""
    plt = pyplot()

    ranks = read_ranks(grid.run_dir(tower, "M3", grid.seeds[0]) / RANKS_FILE)["t2i"]
    ks = np.arange(1, 51)
    fig, ax = plt.subplots(figsize=(7, 5))
    for lang in LANGS:
        r = np.asarray(ranks[lang])
        ax.plot(ks, [100 * np.mean(r <= k) for k in ks], label=lang,
                lw=2.5 if lang == "en" else 1)
    ax.set_xlabel("K")
    ax.set_ylabel("text-to-image recall@K (%)")
    ax.set_title(f"Figure 2 ({grid.profile} profile, {tower} + M3, seed {grid.seeds[0]})",
                 fontsize=10)
    ax.legend(ncol=2, fontsize=8)
    ax.grid(alpha=0.3)
    return finish_figure(fig, out, f"figure2_recall_curves_{tower}.png")


def _interval(values) -> tuple[float, float]:
    """(mean, half-width of the 95% t-interval) of per-seed values."""
    v = [float(x) for x in values]
    if len(v) < 2:
        return (v[0] if v else float("nan")), 0.0
    mean, low, _ = t_interval(v)
    return mean, mean - low


def lambda_points(grid, tower, lr: float) -> list[tuple[float, Arm, list]]:
    """(lambda, arm, runs) of the lambda curve at learning rate ``lr``, in increasing lambda;
    runs restricted to the seeds every point has (the first seeds), so that the points are
    comparable. Empty when fewer than 3 points ran (PATR and M3 alone are Table 2's pair)."""
    have = [(arm.lam, arm, grid.runs(tower, arm)) for arm in
            (curve_arm(lam, lr) for lam in CURVE_LAMBDAS)]
    have = [(lam, arm, runs) for lam, arm, runs in have if runs]
    if len(have) < 3:
        return []
    common = set.intersection(*({r.seed for r in runs} for _, _, runs in have))
    return [(lam, arm, [r for r in runs if r.seed in common])
            for lam, arm, runs in sorted(have, key=lambda point: point[0])]


def figure3(grid, out: Path, tower: str) -> str | None:
    """Lambda curves, one per matched learning rate: non-English and English t2i R@1 / R@10
    and the text-cluster gap against lambda (mean over seeds, 95% t-intervals)."""
    curves = {lr: lambda_points(grid, tower, lr) for lr in MATCHED_LRS}
    curves = {lr: points for lr, points in curves.items() if points}
    if not curves:
        return None
    plt = pyplot()
    lams = sorted({p[0] for points in curves.values() for p in points})
    where = {lam: i for i, lam in enumerate(lams)}  # lambda spans 0..3: equal spacing, labelled
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for c, (lr, points) in enumerate(curves.items()):
        xs = [where[p[0]] + 0.06 * c for p in points]  # a small offset keeps the bars apart
        color = f"C{c}"
        for ax, k in zip(axes[:2], (1, 10)):
            for langs, label, style in ((NON_EN, "non-English", "-o"), (("en",), "English", "--s")):
                stats = [_interval(lang_mean(runs, langs, f"t2i_R@{k}")) for _, _, runs in points]
                ax.errorbar(xs, [m for m, _ in stats], yerr=[h for _, h in stats], fmt=style,
                            color=color, capsize=4, label=f"{label}, lr {lr_label(lr)}")
            ax.set_ylabel(f"text-to-image R@{k} (%)")
        gaps = [_interval([r.text_clusters["gap"] for r in runs]) for _, _, runs in points]
        axes[2].errorbar(xs, [m for m, _ in gaps], yerr=[h for _, h in gaps], fmt="-o",
                         capsize=4, color=color, label=f"lr {lr_label(lr)}")
    axes[2].set_ylabel("text-cluster gap (same − different item cosine)")
    n = min(len(points[0][2]) for points in curves.values())
    for ax in axes:
        ax.set_xticks(range(len(lams)), [f"{l:g}" for l in lams])
        ax.set_xlabel("λ (weight of the text-text term; 0 = PATR, 1 = M3)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    return finish_figure(fig, out, f"figure3_lambda_{tower}.png",
                   f"Figure 3 ({grid.profile} profile, {tower}): M3's λ at each matched learning "
                   f"rate, {n} seeds per point, mean and 95% t-interval")


def matched_pairs(grid, tower) -> list[tuple[str, Arm, Arm]]:
    """(label, PATR arm, M3 arm) of every pair the grid trained on ``tower`` whose configs
    differ in lambda only (checked on the configs, so a pair that changes more is never
    shown): the matched learning rates, Table 2d's protocols, the raw-feature rows, and the
    arms at their own settings when those happen to match; each pair of runs once."""
    cands = [(f"lr {lr_label(lr)}", *matched_pair(lr)) for lr in MATCHED_LRS]
    cands += [(f"protocol {p}", protocol_arm("PATR", p), protocol_arm("M3", p))
              for p in PROTOCOLS if p != REFERENCE_PROTOCOL]
    cands += [("raw features", raw_arm("PATR"), raw_arm("M3")),
              ("own settings", as_arm("PATR"), as_arm("M3"))]
    out, seen = [], set()
    for label, patr, m3 in cands:
        keys = [grid.key(tower, arm, grid.seeds[0]) for arm in (patr, m3)]
        if not all(k in grid.configs for k in keys):
            continue
        a, b = (json.loads(grid.configs[k].to_json()) for k in keys)
        runs = tuple(grid.run_dirs[k] for k in keys)
        if {k for k in a if a[k] != b[k]} == {"lambda_tt"} and runs not in seen:
            seen.add(runs)
            out.append((label, patr, m3))
    return out


#: Figure 6's correlations (Table 6b): over every matched pair, and over the pairs whose M3
#: is the paper's (lambda 1).
CORRELATION_ALL = "every matched pair"
CORRELATION_PAPER = "pairs with the paper's M3 (λ = 1)"


def plateau_exit(runs) -> float:
    """PATR's time on the loss plateau over its seeds: the median escape step, a run that
    never left counting as its last step."""
    return float(np.median([r.escape_step if r.escape_step is not None else r.steps
                            for r in runs]))


def mechanism_points(grid) -> list[tuple]:
    """Figure 6's points: (tower, pair label, M3's lambda, PATR's plateau exit in steps,
    (mean, 95% half-width) of M3 − PATR non-English t2i R@1 in points) for every matched pair
    of every tower."""
    return [(tower, label, grid.config(tower, m3).lambda_tt,
             plateau_exit(grid.runs(tower, patr)),
             _interval(paired(grid, tower, m3, patr, NON_EN, "t2i_R@1")))
            for tower in grid.towers_run for label, patr, m3 in matched_pairs(grid, tower)]


def figure6(grid, out: Path) -> str | None:
    """The mechanism: for every matched pair of every tower, M3 − PATR non-English R@1
    (paired mean, 95% t-interval) against how long PATR stayed on the loss plateau."""
    points = mechanism_points(grid)
    if len(points) < 2:
        return None
    fig = draw_figure6(points, grid.profile)
    return finish_figure(fig, out, "figure6_mechanism.png")


def draw_figure6(points: list[tuple], profile: str):
    """Figure 6 from :func:`mechanism_points`: one marker and error bar per pair (colour: the
    tower, marker: M3's lambda), each labelled clear of the bars, the legend beside the axes;
    returns the laid-out figure."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 5.5))
    towers = list(dict.fromkeys(p[0] for p in points))
    lambdas = sorted({p[2] for p in points}, reverse=True)
    drawn = []
    for tower in towers:
        for lam in lambdas:
            mine = [p for p in points if p[0] == tower and p[2] == lam]
            if not mine:
                continue
            bars = ax.errorbar([p[3] for p in mine], [p[4][0] for p in mine],
                               yerr=[p[4][1] for p in mine], fmt="os^D"[lambdas.index(lam) % 4],
                               capsize=4, color=f"C{towers.index(tower)}",
                               label=f"{tower}, M3 λ {lam:g}")
            drawn.append(bars)
    ax.axhline(0, color="grey", lw=1)
    ax.set_xlabel("PATR's plateau-escape step (median over seeds; never: its last step)")
    ax.set_ylabel("M3 − PATR, non-English t2i R@1 (paired by seed)")
    ax.grid(alpha=0.3)
    ax.margins(x=0.12, y=0.08)  # room for the labels of the outermost points
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    set_title(fig, f"Figure 6 ({profile} profile): M3 − PATR against PATR's time on the "
              "plateau, every matched pair (mean and 95% t-interval)")
    place_labels(ax, [(p[3], p[4][0]) for p in points], [p[1] for p in points], drawn,
                 fontsize=9)
    return fig


def read_log(run_dir: Path) -> list[dict]:
    """A run's per-epoch log (``log.jsonl``)."""
    return [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines()]


def figure4(grid, out: Path, tower: str) -> str | None:
    """Training curves of PATR and M3 at twice the default length (mean over seeds): English
    validation R-sum and cos(t, v+) - cos(t, hardest v-) per optimizer step; each run's
    plateau-escape step is marked on the x axis; the default length is a dotted line."""

    arms = [long_arm(a) for lr in MATCHED_LRS for a in matched_pair(lr)]
    arms = [a for a in arms if grid.runs(tower, a)]
    if not arms:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for arm in arms:
        base = arm.continues
        # PATR blue, M3 red; the lower learning rate dashed
        color = "tab:blue" if arm.method == "PATR" else "tab:red"
        line = "--" if arm.lr == MATCHED_LRS[0] else "-"
        logs = [read_log(grid.run_dir(tower, arm, s)) for s in grid.seeds
                if grid.key(tower, arm, s) in grid.run_dirs]
        steps = np.array([e["step"] for e in logs[0]])
        rsum = np.mean([[e["val_rsum"] for e in log] for log in logs], axis=0)
        gap = np.mean([[e["cos_pos"] - e["cos_neg"] for e in log] for log in logs], axis=0)
        for ax, y in zip(axes, (rsum, gap)):
            ax.plot(steps, y, line, color=color, label=f"{base.name} (mean of {len(logs)} seeds)")
        escapes = [r.escape_step for r in grid.runs(tower, arm) if r.escape_step is not None]
        axes[0].scatter(escapes, np.interp(escapes, steps, rsum), color=color, marker="v",
                        s=60, zorder=3, label=f"{base.name}: each seed's plateau escape")
        axes[1].scatter(escapes, np.interp(escapes, steps, gap), color=color, marker="v",
                        s=60, zorder=3)
    default_epochs = grid.config(tower, arms[0].continues).epochs
    default_end = steps[min(default_epochs, len(steps)) - 1]
    for ax in axes:
        ax.axvline(default_end, color="grey", ls=":", lw=1)
        ax.set_xlabel("optimizer step (dotted: the default training length)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("English validation R-sum")
    axes[1].set_ylabel("cos(t, v+) − cos(t, hardest v−), epoch mean")
    axes[0].legend(fontsize=8)
    return finish_figure(fig, out, f"figure4_training_{tower}.png",
                   f"Figure 4 ({grid.profile} profile, {tower}"
                   + (f", protocol {REFERENCE_PROTOCOL} of Table 2d" if grid.profile == "mini" else "")
                   + "): PATR vs M3 (λ = 1) at matched learning rates, twice the default "
                   "training length")


def figure2d(grid, out: Path, tower: str) -> str | None:
    """Table 2d as a picture: per protocol the paired M3 − PATR difference (mean and 95%
    t-interval over seeds) for non-English and English R@1 / R@10, and each seed's
    plateau-escape step of PATR and M3."""
    rows = [p for p in PROTOCOLS
            if all(grid.runs(tower, protocol_arm(a, p)) for a in ("PATR", "M3"))]
    if len(rows) < 2:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 0.9 * len(rows) + 2.2))
    ys = np.arange(len(rows))[::-1]
    for ax, k in zip(axes[:2], (1, 10)):
        for langs, label, dy, color in ((NON_EN, "non-English (mean of 10)", 0.12, "tab:purple"),
                                        (("en",), "English", -0.12, "tab:grey")):
            stats = [_interval(paired(grid, tower, protocol_arm("M3", p), protocol_arm("PATR", p),
                                      langs, f"t2i_R@{k}")) for p in rows]
            ax.errorbar([m for m, _ in stats], ys + dy, xerr=[h for _, h in stats], fmt="o",
                        capsize=4, color=color, label=label)
        ax.axvline(0, color="black", lw=1)
        ax.set_xlabel(f"M3 − PATR, text-to-image R@{k} (points; 95% t-interval)")
    for arm, dy, color in (("PATR", 0.12, "tab:blue"), ("M3", -0.12, "tab:red")):
        for y, p in zip(ys, rows):
            steps = [r.escape_step for r in grid.runs(tower, protocol_arm(arm, p))]
            seen = [s for s in steps if s is not None]
            axes[2].scatter(seen, [y + dy] * len(seen), color=color, s=25,
                            label=arm if p == rows[0] else None)
            if len(seen) < len(steps):
                axes[2].annotate(f"{len(steps) - len(seen)} never", (0, y + dy), fontsize=7)
    axes[2].set_xlabel("plateau-escape optimizer step, each seed")
    for ax in axes:
        ax.set_yticks(ys, rows if ax is axes[0] else [""] * len(rows))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    n = len(grid.runs(tower, "M3"))
    return finish_figure(fig, out, f"figure2d_protocols_{tower}.png",
                   f"Figure 2d ({grid.profile} profile, {tower}): M3 vs PATR under each protocol "
                   f"of Table 2d, paired over {n} seeds")


def figure5(grid, studies: dict, out: Path, arms=("PATR", "M3")) -> str | None:
    """Table 5 as a picture: zero-shot non-English R@1 against alignment R@1, one point per
    condition (``studies``: tower -> rows of :func:`repro.report.towerstudy.study`), PATR and M3
    side by side; filled: without centering, hollow: with it; the real towers marked."""
    if not studies:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    markers = {"real": "*", "offset": "o", "rotation": "^"}
    labels = {ax: [] for ax in axes}  # per panel: ((x, y), label) of the real towers
    for ax, arm in zip(axes, arms):
        for tower, rows in studies.items():
            for r in rows:
                y = float(np.mean(r[arm]["R@1"]))
                color = f"C{list(studies).index(tower)}"
                style = dict(marker=markers[r["kind"]], s=160 if r["kind"] == "real" else 45,
                             edgecolors="black" if r["kind"] == "real" else color,
                             facecolors="none" if r["centered"] else color)
                ax.scatter(r["alignment_R@1"], y, **style)
                if r["kind"] == "real" and not r["centered"]:
                    labels[ax].append(((r["alignment_R@1"], y), f"{r['tower']} (real)"))
        ax.set_title(arm)
        ax.set_xlabel("caption-to-English alignment R@1 of the tower features (%)")
        ax.grid(alpha=0.3)
        ax.margins(x=0.08, y=0.1)
    axes[0].set_ylabel("zero-shot text-to-image R@1, non-English mean (%)")
    # the legend shows each marker as drawn: shape = condition, colour = tower (a circle)
    handles = [plt.Line2D([], [], marker=m, ls="", color="grey", ms=9 if k == "real" else 6,
                          label=k) for k, m in markers.items()]
    handles.append(plt.Line2D([], [], marker="o", ls="", mfc="none", color="grey",
                              label="with language centering (hollow)"))
    handles += [plt.Line2D([], [], marker="o", ls="", color=f"C{i}",
                           label=f"tower: {text_tower(tower).display}")
                for i, tower in enumerate(studies)]
    axes[1].legend(handles=handles, fontsize=9, loc="upper left", bbox_to_anchor=(1.02, 1),
                   borderaxespad=0)
    set_title(fig, f"Figure 5 ({grid.profile} profile): zero-shot transfer against tower "
              "alignment; perturbed towers are perturbations of the real one")
    for ax, marks in labels.items():
        place_labels(ax, [xy for xy, _ in marks], [t for _, t in marks], ax.collections,
                     fontsize=9)
    return finish_figure(fig, out, "figure5_towers.png")
