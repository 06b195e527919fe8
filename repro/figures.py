"""Figures of ``paper_tables/`` (PNG, matplotlib, no timestamps):

1. text clusters of test captions in 11 languages (raw tower, PATR, M3);
2. text-to-image recall@K curves per language (M3);
3. the lambda curve: M3's text-term weight against retrieval and cluster tightness;
4. training curves: English validation R-sum and the cosine gap per optimizer step, PATR vs M3
   at twice the default length, with each run's plateau-escape step marked;
2d. M3 − PATR under each protocol of Table 2d, with the plateau-escape steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from repro import metrics
from repro.data import LANGS
from repro.evaluation import embed_images, embed_texts
from repro.grid import LAMBDAS, LONG_ARMS, PROTOCOLS, protocol_arm
from repro.model import DualEncoder
from repro.report import NON_EN, lang_mean, paired, save_png
from repro.stats import t_interval


def _pyplot():
    import matplotlib  # here, not at the top: the Agg backend must be chosen before pyplot loads

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig, out: Path, name: str, title: str | None = None) -> str:
    """Title (if any), lay out, write ``out/name`` as PNG and close the figure; returns name."""
    if title is not None:
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
    save_png(fig, out / name)
    _pyplot().close(fig)
    return name


def load_model(grid, tower, arm, seed, task=None):
    """The evaluated (best-validation) model of a finished run, on the CPU, in eval mode
    (``task``: the one it trained on, when not the tower's main task)."""
    cfg, task = grid.configs[(tower, arm, seed)], task or grid.tasks[tower]
    model = DualEncoder(cfg, task.text_dim, task.image_feat_dim)
    model.load_state_dict(torch.load(grid.run_dirs[(tower, arm, seed)] / "best_model.pt",
                                     map_location="cpu"))
    return model.eval()


def figure1(grid, out: Path, tower: str) -> tuple[str, dict]:
    """Text clusters: 2-D PCA of 8 test items' captions in 11 languages, raw / PATR / M3."""
    plt = _pyplot()
    task = grid.tasks[tower]
    seed = grid.seeds[0]
    panels = {"raw tower": {l: torch.nn.functional.normalize(ts.feats, dim=-1).numpy()
                            for l, ts in task.test_text.items()}}
    for arm in ("PATR", "M3"):
        model = load_model(grid, tower, arm, seed)
        panels[f"{arm} (seed {seed})"] = {l: embed_texts(model, ts.feats)
                                          for l, ts in task.test_text.items()}
    items = np.arange(min(8, task.test_text["en"].feats.shape[0]))
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    stats = {}
    for ax, (name, emb) in zip(axes, panels.items()):
        st = metrics.cluster_stats(emb, {l: ts.text_id for l, ts in task.test_text.items()})
        stats[name] = st
        pts = np.concatenate([emb[l][items] for l in LANGS])
        centred = pts - pts.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
        colors = plt.cm.tab10(np.arange(len(items)) % 10)
        for j, lang in enumerate(LANGS):
            sl = slice(j * len(items), (j + 1) * len(items))
            ax.scatter(xy[sl, 0], xy[sl, 1], c=colors, s=30, marker="o" if lang == "en" else ".")
        ax.set_title(f"{name}\ngap {st['gap']:.3f}, separation {st['separation']:.2f}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    name = _finish(fig, out, f"figure1_text_clusters_{tower}.png",
                   f"Figure 1 ({grid.profile} profile, {tower}): captions of 8 test items in 11 "
                   "languages, one colour per item (gap and separation over all test items)")
    return name, stats


def figure2(grid, out: Path, tower: str) -> str:
    """Recall@K curves (t2i) per language for M3, seed 0."""
    plt = _pyplot()

    task = grid.tasks[tower]
    model = load_model(grid, tower, "M3", grid.seeds[0])
    img = embed_images(model, task.test_images)
    ks = np.arange(1, 51)
    fig, ax = plt.subplots(figsize=(7, 5))
    for lang in LANGS:
        ts = task.test_text[lang]
        r = metrics.ranks(embed_texts(model, ts.feats) @ img.T, ts.item)
        ax.plot(ks, [100 * np.mean(r <= k) for k in ks], label=lang,
                lw=2.5 if lang == "en" else 1)
    ax.set_xlabel("K")
    ax.set_ylabel("text-to-image recall@K (%)")
    ax.set_title(f"Figure 2 ({grid.profile} profile, {tower} + M3, seed {grid.seeds[0]})",
                 fontsize=10)
    ax.legend(ncol=2, fontsize=8)
    ax.grid(alpha=0.3)
    return _finish(fig, out, f"figure2_recall_curves_{tower}.png")


def _interval(values) -> tuple[float, float]:
    """(mean, half-width of the 95% t-interval) of per-seed values."""
    v = [float(x) for x in values]
    if len(v) < 2:
        return (v[0] if v else float("nan")), 0.0
    mean, low, _ = t_interval(v)
    return mean, mean - low


def lambda_points(grid, tower) -> list[tuple[float, str, list]]:
    """(lambda, arm, runs) of the lambda curve, in increasing lambda; runs restricted to the
    seeds every point has (the first seeds), so that the points are comparable."""

    have = [(lam, arm, grid.runs(tower, arm)) for arm, lam in LAMBDAS.items()]
    have = [(lam, arm, runs) for lam, arm, runs in have if runs]
    if len(have) < 3:  # PATR and M3 alone are Table 2's comparison, not a curve
        return []
    common = set.intersection(*({r["seed"] for r in runs} for _, _, runs in have))
    return sorted((lam, arm, [r for r in runs if r["seed"] in common]) for lam, arm, runs in have)


def figure3(grid, out: Path, tower: str) -> str | None:
    """Lambda curve: non-English and English t2i R@1 / R@10 and the text-cluster gap
    against lambda (mean over seeds, 95% t-intervals)."""
    points = lambda_points(grid, tower)
    if len(points) < 2:
        return None
    plt = _pyplot()
    lams = [p[0] for p in points]
    xs = np.arange(len(lams))  # lambda spans 0..3: equally spaced ticks, labelled
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, k in zip(axes[:2], (1, 10)):
        for langs, label, style in ((NON_EN, "non-English (mean of 10)", "-o"),
                                    (("en",), "English", "--s")):
            stats = [_interval(lang_mean(runs, langs, f"t2i_R@{k}")) for _, _, runs in points]
            ax.errorbar(xs, [m for m, _ in stats], yerr=[h for _, h in stats], fmt=style,
                        capsize=4, label=label)
        ax.set_ylabel(f"text-to-image R@{k} (%)")
    gaps = [_interval([r["text_clusters"]["gap"] for r in runs]) for _, _, runs in points]
    axes[2].errorbar(xs, [m for m, _ in gaps], yerr=[h for _, h in gaps], fmt="-o", capsize=4,
                     color="tab:green")
    axes[2].set_ylabel("text-cluster gap (same − different item cosine)")
    n = len(points[0][2])
    for ax in axes:
        ax.set_xticks(xs, [f"{l:g}" for l in lams])
        ax.set_xlabel("λ (weight of the text-text term; 0 = PATR, 1 = M3)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _finish(fig, out, f"figure3_lambda_{tower}.png",
                   f"Figure 3 ({grid.profile} profile, {tower}): M3's λ, {n} seeds per point, "
                   "mean and 95% t-interval")


def read_log(run_dir: Path) -> list[dict]:
    """A run's per-epoch log (``log.jsonl``)."""
    return [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines()]


def figure4(grid, out: Path, tower: str) -> str | None:
    """Training curves of PATR and M3 at twice the default length (mean over seeds): English
    validation R-sum and cos(t, v+) - cos(t, hardest v-) per optimizer step; each run's
    plateau-escape step is marked on the x axis; the default length is a dotted line."""

    arms = [a for a in LONG_ARMS if grid.runs(tower, a)]
    if not arms:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    colors = {"PATR": "tab:blue", "M3": "tab:red"}
    for arm in arms:
        base = LONG_ARMS[arm]
        logs = [read_log(grid.run_dirs[(tower, arm, s)]) for s in grid.seeds
                if (tower, arm, s) in grid.run_dirs]
        steps = np.array([e["step"] for e in logs[0]])
        rsum = np.mean([[e["val_rsum"] for e in log] for log in logs], axis=0)
        gap = np.mean([[e["cos_pos"] - e["cos_neg"] for e in log] for log in logs], axis=0)
        for ax, y in zip(axes, (rsum, gap)):
            ax.plot(steps, y, color=colors[base], label=f"{base} (mean of {len(logs)} seeds)")
        escapes = [r["escape_step"] for r in grid.runs(tower, arm) if r["escape_step"] is not None]
        axes[0].scatter(escapes, np.interp(escapes, steps, rsum), color=colors[base], marker="v",
                        s=60, zorder=3, label=f"{base}: each seed's plateau escape")
        axes[1].scatter(escapes, np.interp(escapes, steps, gap), color=colors[base], marker="v",
                        s=60, zorder=3)
    default_epochs = grid.configs[(tower, LONG_ARMS[arms[0]], grid.seeds[0])].epochs
    default_end = steps[min(default_epochs, len(steps)) - 1]
    for ax in axes:
        ax.axvline(default_end, color="grey", ls=":", lw=1)
        ax.set_xlabel("optimizer step (dotted: the default training length)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("English validation R-sum")
    axes[1].set_ylabel("cos(t, v+) − cos(t, hardest v−), epoch mean")
    axes[0].legend(fontsize=8)
    return _finish(fig, out, f"figure4_training_{tower}.png",
                   f"Figure 4 ({grid.profile} profile, {tower}"
                   + (", protocol v2 of Table 2d" if grid.profile == "mini" else "")
                   + "): PATR vs M3 at twice the default training length")


def figure2d(grid, out: Path, tower: str) -> str | None:
    """Table 2d as a picture: per protocol the paired M3 − PATR difference (mean and 95%
    t-interval over seeds) for non-English and English R@1 / R@10, and each seed's
    plateau-escape step of PATR and M3."""
    rows = [p for p in PROTOCOLS
            if all(grid.runs(tower, protocol_arm(a, p)) for a in ("PATR", "M3"))]
    if len(rows) < 2:
        return None
    plt = _pyplot()
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
            steps = [r["escape_step"] for r in grid.runs(tower, protocol_arm(arm, p))]
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
    return _finish(fig, out, f"figure2d_protocols_{tower}.png",
                   f"Figure 2d ({grid.profile} profile, {tower}): M3 vs PATR under each protocol "
                   f"of Table 2d, paired over {n} seeds")


TOWER_NAMES = {"muse": "mUSE", "mbert": "mBERT", "e5": "E5"}


def figure5(grid, studies: dict, out: Path, arms=("PATR", "M3")) -> str | None:
    """Table 5 as a picture: zero-shot non-English R@1 against alignment R@1, one point per
    condition (``studies``: tower -> rows of :func:`repro.towerstudy.study`), PATR and M3
    side by side; filled: without centering, hollow: with it; the real towers marked."""
    if not studies:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    markers = {"real": "*", "offset": "o", "rotation": "^"}
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
                    below = "raw features" in r["tower"]  # keep two labels of a tower apart
                    ax.annotate(f"{r['tower']} (real)", (r["alignment_R@1"], y),
                                xytext=(6, -14 if below else 6), textcoords="offset points",
                                fontsize=9)
        ax.set_title(arm)
        ax.set_xlabel("caption-to-English alignment R@1 of the tower features (%)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("zero-shot text-to-image R@1, non-English mean (%)")
    handles = [plt.Line2D([], [], marker=m, ls="", color="grey", label=k)
               for k, m in markers.items()]
    handles.append(plt.Line2D([], [], marker="o", ls="", mfc="none", color="grey",
                              label="with language centering"))
    handles += [plt.Line2D([], [], marker="s", ls="", color=f"C{i}",
                           label=TOWER_NAMES.get(tower, tower))
                for i, tower in enumerate(studies)]
    axes[1].legend(handles=handles, fontsize=8)
    return _finish(fig, out, "figure5_towers.png",
                   f"Figure 5 ({grid.profile} profile): zero-shot transfer against tower "
                   "alignment; perturbed towers are perturbations of the real one")
