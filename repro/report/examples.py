"""Examples a reader looks at first, drawn by a rule declared in :mod:`repro.report.analysis`
(never picked by hand):
Figure 7 (retrieval: the names of a few test emoji in every language and their top images,
PATR and M3 of the first seed) and Figure 8 (tagging: a few test images and their top tags in
seven languages of every script), each with a table of the same results that ``compare`` checks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repro.data import emoji
from repro.data.paper import LANGS
from repro.report import analysis
from repro.report.analysis import (EXAMPLE_SEED, EXAMPLES, RETRIEVAL_ARMS, TAG_LANGS,
                                   TAGGING_ARM, TOP, example_items)
from repro.core.drawing import fit_width, pyplot, shorten
from repro.report.figures import finish_figure
from repro.report.table import Table

def _test_paths(grid, tower: str) -> list[Path]:
    """The test images of ``tower``'s task, in test-split order."""
    cfg = grid.configs[next(k for k in grid.configs if k[0] == tower)]
    bench = emoji.load_emoji()
    paths = emoji.emoji_image_paths(bench)
    return [paths[i] for i in bench.indices("test", cfg.emoji_split)]


def retrieval_examples(grid, tower: str) -> list[dict]:
    """Per example emoji, language and arm: the name, the top image positions, and the rank
    of the emoji's own image (1 = first), from the runs' analyses."""
    return [{"arm": arm, **row} for arm in RETRIEVAL_ARMS
            for row in analysis.of(grid, tower, arm, grid.seeds[0])["examples"]]


def table7(grid, tower: str, rows: list[dict], names: dict) -> Table:
    t = Table(f"figure7_retrieval_examples_{tower}",
              f"Figure 7 numbers: retrieval examples ({tower}, seed {grid.seeds[0]})",
              f"Text tower {tower}. {EXAMPLES} test emoji drawn by the declared rule "
              f"(numpy default_rng({EXAMPLE_SEED}), without replacement); per language the "
              f"test name as the query over the {grid.tasks[tower].test_images.shape[0]} test "
              f"images; rank of the emoji's own image (1: first) and the top {TOP} (test-split "
              "positions).", ["emoji (English name)", "language", "query"]
              + [f"{a} {what}" for a in RETRIEVAL_ARMS for what in ("rank", f"top {TOP}")],
              labels=3)
    by = {(r["arm"], r["lang"], r["item"]): r for r in rows}
    for item in example_items(grid.tasks[tower].test_images.shape[0]):
        for lang in LANGS:
            cells = [names[("en", int(item))], lang, names[(lang, int(item))]]
            for arm in RETRIEVAL_ARMS:
                r = by[(arm, lang, int(item))]
                cells += [float(r["rank"]), " ".join(map(str, r["top"]))]
            t.add(cells)
    return t


def _names(grid, tower: str) -> dict:
    """(lang, test position) -> the test name."""
    bench = emoji.load_emoji()
    cfg = grid.configs[next(k for k in grid.configs if k[0] == tower)]
    test = bench.indices("test", cfg.emoji_split)
    return {(lang, i): name for lang in LANGS for i, name in enumerate(bench.names(lang, test))}


#: Figure 7's thumbnails: pixels a side (drawn 1:1 at the saved 100 dpi), and the frame that
#: marks the emoji's own image.
THUMB, FRAME = 40, 3
#: Figure 7's layout: example blocks side by side, the label column and the space between
#: blocks (inches), the labels' size (points) and the longest name a label shows (columns).
COLUMNS, LABEL_INCHES, BETWEEN_INCHES, LABEL_POINTS, NAME_COLUMNS = 2, 2.6, 0.3, 9, 28
DPI = 100  # repro.core.fileio.save_png's


def _thumb(path: Path, hit: bool) -> np.ndarray:
    """A THUMB x THUMB RGB thumbnail (uint8) framed green when ``hit``, light grey else."""
    from PIL import Image

    from repro.towers.backbones import load_rgb

    inner = THUMB - 2 * FRAME
    img = np.asarray(load_rgb(path).resize((inner, inner), Image.Resampling.LANCZOS))
    tile = np.full((THUMB, THUMB, 3), (40, 160, 40) if hit else (225, 225, 225), np.uint8)
    tile[FRAME:FRAME + inner, FRAME:FRAME + inner] = img
    return tile


def example_block(tops: dict, paths: list[Path], item: int) -> np.ndarray:
    """One example's mosaic, uint8 (rows, cols, 3): per language of ``tops`` ((arm, lang) ->
    top test positions) a row of THUMB-pixel thumbnails, each arm's top images side by side
    with a white gap between arms; the item's own image framed green."""
    gap = np.full((THUMB, THUMB // 2, 3), 255, np.uint8)
    langs = list(dict.fromkeys(lang for _, lang in tops))
    lines = []
    for lang in langs:
        strips = [np.concatenate([_thumb(paths[p], p == item) for p in tops[(arm, lang)]],
                                 axis=1) for arm in RETRIEVAL_ARMS]
        lines.append(np.concatenate([strips[0], *(x for s in strips[1:] for x in (gap, s))],
                                    axis=1))
    return np.concatenate(lines, axis=0)


def draw_figure7(blocks: list[tuple[str, np.ndarray, list[str]]], title: str):
    """Figure 7 from per-example (heading, :func:`example_block` mosaic, one label per row):
    COLUMNS blocks a row, thumbnails 1:1 at DPI, labels of LABEL_POINTS beside each row, the
    arms' headings above each block; returns the figure."""
    plt = pyplot()
    rows = -(-len(blocks) // COLUMNS)
    h, w = blocks[0][1].shape[:2]
    mosaic_w, mosaic_h = w / DPI, h / DPI
    head, top, margin = 0.75, 0.75, 0.15  # inches: a block's headings, the title, the edges
    width = 2 * margin + COLUMNS * (LABEL_INCHES + mosaic_w) + (COLUMNS - 1) * BETWEEN_INCHES
    height = top + rows * (head + mosaic_h) + margin
    fig = plt.figure(figsize=(width, height), dpi=DPI)
    arm_w = TOP * THUMB  # pixels of one arm's strip
    for k, (heading, mosaic, labels) in enumerate(blocks):
        r, c = divmod(k, COLUMNS)
        x0 = margin + c * (LABEL_INCHES + mosaic_w + BETWEEN_INCHES) + LABEL_INCHES
        y0 = height - top - (r + 1) * (head + mosaic_h) + 0.05
        ax = fig.add_axes([x0 / width, y0 / height, mosaic_w / width, mosaic_h / height])
        ax.imshow(mosaic, interpolation="nearest")
        ax.set_xticks([arm_w / 2 + i * (arm_w + THUMB // 2) for i in range(len(RETRIEVAL_ARMS))],
                      [f"{a}: top {TOP}" for a in RETRIEVAL_ARMS], fontsize=LABEL_POINTS)
        ax.xaxis.tick_top()
        ax.tick_params(length=0)
        ax.set_yticks([THUMB / 2 + i * THUMB for i in range(len(labels))], labels,
                      fontsize=LABEL_POINTS)
        ax.set_title(heading, fontsize=10, loc="left", x=-LABEL_INCHES / mosaic_w, pad=20)
        for side in ax.spines.values():
            side.set_visible(False)
    fit_width(fig, fig.suptitle(title, fontsize=10, y=1 - 0.1 / height, va="top"))
    return fig


def figure7(grid, out: Path, tower: str) -> tuple[list[str], Table]:
    """Figure 7 and its table: per example emoji and language, the top images of PATR and M3
    (the emoji's own image framed in green), the query (the emoji's name in that language)
    beside each row."""
    rows, names, paths = retrieval_examples(grid, tower), _names(grid, tower), _test_paths(grid, tower)
    tops = {(r["arm"], r["lang"], r["item"]): r["top"] for r in rows}
    picks = example_items(grid.tasks[tower].test_images.shape[0])
    blocks = []
    for item in map(int, picks):
        mine = {(arm, lang): tops[(arm, lang, item)] for lang in LANGS for arm in RETRIEVAL_ARMS}
        blocks.append((shorten(names[("en", item)], 2 * NAME_COLUMNS),
                       example_block(mine, paths, item),
                       [f"{lang}: {shorten(names[(lang, item)], NAME_COLUMNS)}" for lang in LANGS]))
    fig = draw_figure7(blocks, f"Figure 7 ({grid.profile} profile, {tower}, seed "
                       f"{grid.seeds[0]}): {len(picks)} test emoji drawn by a declared rule, "
                       "their names in each language as queries; the emoji's own image framed "
                       "in green")
    return [finish_figure(fig, out, f"figure7_retrieval_examples_{tower}.png")], \
        table7(grid, tower, rows, names)


def _image(path: Path) -> np.ndarray:
    from repro.towers.backbones import load_rgb

    return np.asarray(load_rgb(path))


#: Figure 8's text: its size (points), the longest tag and image name it shows (columns; a
#: wide CJK character counts two).
TAG_POINTS, TAG_COLUMNS, IMAGE_NAME_COLUMNS = 9, 22, 20


def draw_figure8(examples: list[tuple[str, np.ndarray, dict]]):
    """Figure 8 from per-example (English name, RGB image, lang -> [(tag, is one of the
    emoji's own keywords)]): a row per example, the image then a column per language, tags
    shortened to TAG_COLUMNS with "…" and marked ✓ when own; returns the figure (untitled)."""
    plt = pyplot()
    langs = list(examples[0][2])
    fig, axes = plt.subplots(len(examples), 1 + len(langs), squeeze=False,
                             figsize=(1.8 + 2.1 * len(langs), 1.7 * len(examples)),
                             gridspec_kw={"width_ratios": [1.8] + [2.1] * len(langs)})
    for row, (name, image, listed) in zip(axes, examples):
        row[0].imshow(image)
        row[0].set_title(shorten(name, IMAGE_NAME_COLUMNS), fontsize=TAG_POINTS)
        row[0].axis("off")
        for ax, lang in zip(row[1:], langs):
            ax.axis("off")
            lines = [f"{'✓' if own else '  '} {shorten(w, TAG_COLUMNS)}" for w, own in listed[lang]]
            ax.text(0, 1, "\n".join([lang, *lines]), va="top", fontsize=TAG_POINTS,
                    transform=ax.transAxes)
    return fig


def tagging_examples(grid, tower: str) -> dict:
    """(lang, test position) -> the top tags of that example image, each (tag, is one of the
    emoji's own keywords), from the tagging run's analysis."""
    rows = analysis.of(grid, tower, TAGGING_ARM, grid.seeds[0])["tags"]
    return {(r["lang"], r["item"]): [(w, own) for w, own in r["tags"]] for r in rows}


def figure8(grid, out: Path, tower: str) -> tuple[list[str], Table] | None:
    """Figure 8 and its table: the example images with their top tags in each language of
    :data:`repro.report.analysis.TAG_LANGS` (a tag that is one of the emoji's own keywords
    marked ✓)."""
    if not grid.tasks[tower].tags:
        return None
    tags, names, paths = tagging_examples(grid, tower), _names(grid, tower), _test_paths(grid, tower)
    picks = example_items(grid.tasks[tower].test_images.shape[0])
    t = Table(f"figure8_tagging_examples_{tower}",
              f"Figure 8 numbers: tagging examples ({tower}, {TAGGING_ARM}, seed {grid.seeds[0]})",
              f"Text tower {tower}. The test images of Figure 7; per language the top {TOP} of "
              "the language's whole CLDR keyword vocabulary (Table 3's task); ✓: one of the "
              "emoji's own keywords.", ["emoji (English name)", "language", f"top {TOP} tags"],
              labels=2)
    langs = [lang for lang in TAG_LANGS if (lang, int(picks[0])) in tags]  # the task's
    examples = []
    for item in map(int, picks):
        listed = {lang: tags[(lang, item)] for lang in langs}
        for lang, pairs in listed.items():
            t.add([names[("en", item)], lang,
                   "; ".join(f"{w}{' ✓' if own else ''}" for w, own in pairs)])
        examples.append((names[("en", item)], _image(paths[item]), listed))
    fig = draw_figure8(examples)
    name = finish_figure(fig, out, f"figure8_tagging_examples_{tower}.png",
                         f"Figure 8 ({grid.profile} profile, {tower}, {TAGGING_ARM}, seed "
                         f"{grid.seeds[0]}): top {TOP} tags of the Figure 7 images; ✓ one of "
                         "the emoji's own keywords")
    return [name], t
