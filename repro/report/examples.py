"""Examples a reader looks at first, drawn by a rule declared in :mod:`repro.report.analysis`
(never picked by hand):
Figure 7 (retrieval: the names of a few test emoji in every language and their top images,
PATR and M3 of the first seed) and Figure 8 (tagging: a few test images and their top tags in
four languages), each with a table of the same results that ``compare`` checks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repro.data import emoji
from repro.data.paper import LANGS
from repro.report import analysis
from repro.report.analysis import (EXAMPLE_SEED, EXAMPLES, RETRIEVAL_ARMS, TAG_LANGS,
                                   TAGGING_ARM, TOP, example_items)
from repro.report.figures import finish_figure, pyplot
from repro.report.table import Table

def _test_paths(grid, tower: str) -> list[Path]:
    """The test images of ``tower``'s task, in test-split order."""
    cfg = grid.configs[next(k for k in grid.configs if k[0] == tower)]
    bench = emoji.load_emoji()
    paths = emoji.emoji_image_paths(bench)
    return [paths[i] for i in bench.indices("test", cfg.emoji_split)]


def _drawable(text: str) -> bool:
    """Whether matplotlib's default font has a glyph for every character of ``text``."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    font = FT2Font(font_manager.findfont(font_manager.FontProperties()))
    return all(font.get_char_index(ord(c)) for c in text if not c.isspace())


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


#: Figure 7's thumbnails: pixels a side, and the frame that marks the emoji's own image.
THUMB, FRAME = 40, 3


def _thumb(path: Path, hit: bool) -> np.ndarray:
    """A THUMB x THUMB RGB thumbnail (uint8) framed green when ``hit``, light grey else."""
    from PIL import Image

    from repro.towers.backbones import load_rgb

    inner = THUMB - 2 * FRAME
    img = np.asarray(load_rgb(path).resize((inner, inner), Image.Resampling.LANCZOS))
    tile = np.full((THUMB, THUMB, 3), (40, 160, 40) if hit else (225, 225, 225), np.uint8)
    tile[FRAME:FRAME + inner, FRAME:FRAME + inner] = img
    return tile


def figure7(grid, out: Path, tower: str) -> tuple[list[str], Table]:
    """Figure 7 and its table: per example emoji and language, the top images of PATR and M3
    (the emoji's own image framed in green), drawn as one mosaic."""
    rows, names, paths = retrieval_examples(grid, tower), _names(grid, tower), _test_paths(grid, tower)
    by = {(r["arm"], r["lang"], r["item"]): r for r in rows}
    picks = example_items(grid.tasks[tower].test_images.shape[0])
    gap = np.full((THUMB, THUMB // 2, 3), 255, np.uint8)
    lines, labels = [], []
    for item in picks:
        for lang in LANGS:
            strips = [np.concatenate([_thumb(paths[p], p == int(item))
                                      for p in by[(arm, lang, int(item))]["top"]], axis=1)
                      for arm in RETRIEVAL_ARMS]
            lines.append(np.concatenate([strips[0], gap, *strips[1:]], axis=1))
            name = names[(lang, int(item))]
            labels.append(f"{lang}: {name if _drawable(name) else '(name in the table)'}")
        lines.append(np.full((THUMB // 2, lines[-1].shape[1], 3), 255, np.uint8))
        labels.append(None)
    mosaic = np.concatenate(lines, axis=0)
    plt = pyplot()
    h, w = mosaic.shape[:2]
    left, top, bottom = 3.2, 1.1, 0.2  # inches: the labels, the title and headings, a margin
    width, height = w / 60 + left, h / 60 + top + bottom
    fig = plt.figure(figsize=(width, height), dpi=100)
    ax = fig.add_axes([left / width, bottom / height, 1 - left / width,
                       1 - (top + bottom) / height])
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_xticks([(TOP * THUMB) / 2, TOP * THUMB + THUMB // 2 + (TOP * THUMB) / 2],
                  [f"{a}: top {TOP}" for a in RETRIEVAL_ARMS], fontsize=9)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    y = 0
    for line, label in zip(lines, labels):
        if label:
            ax.text(-6, y + line.shape[0] / 2, label, ha="right", va="center", fontsize=7)
        y += line.shape[0]
    fig.suptitle(f"Figure 7 ({grid.profile} profile, {tower}, seed {grid.seeds[0]}): "
                 f"{len(picks)} test emoji drawn by a declared rule,\ntheir names as queries; "
                 "the emoji's own image framed in green", fontsize=9, y=1 - 0.1 / height,
                 va="top")
    return [finish_figure(fig, out, f"figure7_retrieval_examples_{tower}.png")], \
        table7(grid, tower, rows, names)


def _image(path: Path) -> np.ndarray:
    from repro.towers.backbones import load_rgb

    return np.asarray(load_rgb(path))


def tagging_examples(grid, tower: str) -> dict:
    """(lang, test position) -> the top tags of that example image, each (tag, is one of the
    emoji's own keywords), from the tagging run's analysis."""
    rows = analysis.of(grid, tower, TAGGING_ARM, grid.seeds[0])["tags"]
    return {(r["lang"], r["item"]): [(w, own) for w, own in r["tags"]] for r in rows}


def figure8(grid, out: Path, tower: str) -> tuple[list[str], Table] | None:
    """Figure 8 and its table: the example images with their top tags in four languages
    (a tag that is one of the emoji's own keywords marked ✓)."""
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
    plt = pyplot()
    fig, axes = plt.subplots(len(picks), 1 + len(TAG_LANGS), squeeze=False,
                             figsize=(2.0 + 2.6 * len(TAG_LANGS), 1.6 * len(picks)))
    for row, item in zip(axes, picks):
        row[0].imshow(_image(paths[int(item)]))
        row[0].set_title(names[("en", int(item))][:28], fontsize=7)
        row[0].axis("off")
        for ax, lang in zip(row[1:], TAG_LANGS):
            listed = tags[(lang, int(item))]
            t.add([names[("en", int(item))], lang,
                   "; ".join(f"{w}{' ✓' if own else ''}" for w, own in listed)])
            ax.axis("off")
            ax.text(0, 1, lang + "\n" + "\n".join(f"{'✓ ' if own else '   '}{w[:26]}"
                                                  for w, own in listed),
                    va="top", fontsize=7, transform=ax.transAxes)
    name = finish_figure(fig, out, f"figure8_tagging_examples_{tower}.png",
                   f"Figure 8 ({grid.profile} profile, {tower}, {TAGGING_ARM}, seed "
                   f"{grid.seeds[0]}): top {TOP} tags of the Figure 7 images; ✓ one of the "
                   "emoji's own keywords")
    return [name], t
