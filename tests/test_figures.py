"""Every language drawn and every figure fitting its canvas: the CJK fallback font, text cut
only with an ellipsis, and Figures 5-8 and the search/tag sheets built from synthetic inputs
of the shapes the grid gives them, checked for text outside the canvas or across another
label (tolerance: 1 pixel)."""

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from repro.core import drawing
from repro.core.drawing import (boxes_of, display_width, missing_glyphs, pyplot, shorten,
                                text_problems)

CJK = "猫 고양이 ねこ"
NOT_IN_ANY_FONT = "\ue000"  # a private-use code point: drawn as the missing-glyph box


def _ink(text: str, fontsize: float = 20) -> np.ndarray:
    """``text`` drawn alone, black on white, as a grey image (rows, cols) of 0..255."""
    plt = pyplot()
    fig = plt.figure(figsize=(1.0, 0.5), dpi=100)
    fig.text(0.1, 0.2, text, fontsize=fontsize)
    with warnings.catch_warnings():  # the box is drawn on purpose
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig.canvas.draw()
    grey = np.asarray(fig.canvas.buffer_rgba())[..., :3].mean(axis=2)
    plt.close(fig)
    return grey


def test_chinese_japanese_and_korean_draw_as_glyphs_not_the_missing_box():
    assert missing_glyphs(CJK) == []
    assert missing_glyphs(NOT_IN_ANY_FONT) == [NOT_IN_ANY_FONT]  # the check can fail
    box = _ink(NOT_IN_ANY_FONT)
    for char in CJK.replace(" ", ""):
        drawn = _ink(char)
        assert (drawn < 128).sum() > 20, f"{char}: no ink"
        assert not np.array_equal(drawn, box), f"{char}: drawn as the missing-glyph box"


def test_the_cjk_font_comes_after_the_default_font():
    from matplotlib import font_manager

    pyplot()
    prop = font_manager.FontProperties(family=drawing.FAMILIES)
    found = [Path(p).name for p in font_manager.fontManager._find_fonts_by_props(prop)]
    assert found[0].startswith("DejaVuSans") and found[-1] == drawing.CJK_FILE


@pytest.mark.parametrize("text,n,want", [
    ("samochód dostawczy", 16, "samochód dostaw…"),
    ("gülen gözlerle sırıtan yüz", 16, "gülen gözlerle…"),  # the space before "…" dropped
    ("猫の顔でにっこり", 9, "猫の顔で…"),  # a CJK character is two columns
    ("kot", 3, "kot"),
    ("kota", 3, "ko…"),
    ("xy", 1, "…"),
])
def test_shorten_cuts_only_with_an_ellipsis_within_n_columns(text, n, want):
    got = shorten(text, n)
    assert got == want and display_width(got) <= n


def test_shorten_refuses_a_width_below_one():
    with pytest.raises(ValueError, match="must be >= 1"):
        shorten("kot", 0)


def test_text_problems_names_text_off_the_canvas_and_overlapping_labels():
    plt = pyplot()
    fig = plt.figure(figsize=(3, 1), dpi=100)
    fig.text(0.05, 0.5, "fits", fontsize=10)
    fig.text(0.6, 0.1, "runs off the right edge", fontsize=10)
    fig.text(0.05, 0.1, "one label", fontsize=10)
    fig.text(0.08, 0.12, "another", fontsize=10)
    problems = text_problems(fig)
    plt.close(fig)
    assert len(problems) == 2
    assert "outside" in problems[0] and "runs off the right edge" in problems[0]
    assert "overlap" in problems[1] and "one label" in problems[1]


def _figure_of(monkeypatch, module):
    """Make ``module.finish_figure`` hand the figure back instead of writing it."""
    got = {}

    def keep(fig, out, name, title=None):
        if title is not None:
            from repro.report.figures import set_title
            set_title(fig, title)
        got["fig"] = fig
        return name
    monkeypatch.setattr(module, "finish_figure", keep)
    return got


def _study_rows(label, points):
    return [{"tower": label, "kind": kind, "centered": centered, "alignment_R@1": align,
             "PATR": {"R@1": [p, p + 0.2]}, "M3": {"R@1": [m, m - 0.1]}}
            for kind, align, p, m, centered in points]


def test_figure5_fits_and_its_legend_shows_the_markers_drawn(monkeypatch):
    from repro.report import figures

    got = _figure_of(monkeypatch, figures)
    studies = {  # the committed Figure 5's crowded corner: real towers close together
        "muse": _study_rows("mUSE", [("real", 72.9, 10.0, 9.2, False),
                                     ("real", 72.5, 9.8, 9.0, True),
                                     ("offset", 39, 0.7, 0.7, False),
                                     ("rotation", 70.5, 6.5, 6.1, False)]),
        "e5": _study_rows("E5 centered on English", [("real", 60.9, 4.5, 4.4, False),
                                                     ("offset", 17, 0.45, 0.4, False)])
        + _study_rows("E5 raw features", [("real", 55.4, 3.7, 3.3, False)])}
    figures.figure5(SimpleNamespace(profile="mini"), studies, Path("unused"))
    fig = got["fig"]
    assert text_problems(fig) == []
    drawn = {_marker_of(c) for ax in fig.axes for c in ax.collections}
    legend = fig.axes[1].get_legend()
    shown = {h.get_marker() for h in legend.legend_handles}
    assert shown == {"*", "o", "^"} and drawn <= shown
    labels = [t for ax in fig.axes for t in ax.texts]
    assert len(labels) == 6  # three real towers in each panel
    for t in labels:  # inside the axes frame
        box, frame = t.get_window_extent(), t.axes.get_window_extent()
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 <= box.y1 <= frame.y1


def _marker_of(collection) -> str:
    """The marker a scatter was drawn with (matplotlib keeps only its path)."""
    from matplotlib.markers import MarkerStyle

    path = collection.get_paths()[0]
    for m in ("*", "o", "^", "s"):
        style = MarkerStyle(m)
        want = style.get_path().transformed(style.get_transform()).vertices
        if want.shape == path.vertices.shape and np.allclose(want, path.vertices):
            return m
    return "?"


def test_figure6_fits_and_labels_clear_the_error_bars():
    from repro.report import figures

    points = [  # the committed Figure 6's points: several pairs at nearly the same step
        ("muse", "lr 3e-4", 1.0, 245, (-1.85, 1.0)), ("muse", "own settings", 0.1, 245, (-0.83, 1.15)),
        ("muse", "lr 1e-3", 1.0, 297, (-1.28, 0.74)),
        ("muse", "protocol v2, head 1024", 1.0, 448, (-0.67, 1.23)),
        ("muse", "protocol v2, names+keywords", 1.0, 658, (-0.08, 0.88)),
        ("muse", "protocol v1", 1.0, 693, (-0.65, 1.15)),
        ("e5", "own settings", 0.1, 212, (-0.02, 0.7)), ("e5", "raw features", 0.1, 710, (-0.43, 0.78))]
    fig = figures.draw_figure6(points, "mini")
    assert text_problems(fig) == []
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    bars = boxes_of(ax.containers, renderer, pad_px=0)
    from matplotlib.text import Text
    for note in ax.texts:
        box = Text.get_window_extent(note, renderer)
        assert not any(box.overlaps(b) for b in bars), f"{note.get_text()!r} crosses a bar"
    title = fig.texts[0]
    assert title.get_text().replace("\n", " ").startswith("Figure 6 (mini profile)")


def _thumbs(tmp_path, n=12):
    from PIL import Image

    paths = []
    for i in range(n):
        p = tmp_path / f"{i}.png"
        Image.new("RGB", (72, 72), (20 * i, 120, 200 - 10 * i)).save(p)
        paths.append(p)
    return paths


NAMES = {"en": "grinning squinting face", "jp": "目を細めて笑う顔", "ko": "눈을 감고 웃는 얼굴",
         "zh": "眯眼笑", "ru": "смеющееся лицо с прищуренными глазами и ещё словами"}


def test_figure7_is_of_a_readable_size_and_names_every_language(tmp_path):
    from repro.data.paper import LANGS
    from repro.report import examples as ex

    paths = _thumbs(tmp_path)
    blocks = []
    for item in range(6):
        tops = {(arm, lang): [(item + j) % len(paths) for j in range(5)]
                for lang in LANGS for arm in ex.RETRIEVAL_ARMS}
        blocks.append((NAMES["en"], ex.example_block(tops, paths, item),
                       [f"{lang}: {shorten(NAMES.get(lang, 'eight o’clock'), ex.NAME_COLUMNS)}"
                        for lang in LANGS]))
    fig = ex.draw_figure7(blocks, "Figure 7 (mini profile, muse, seed 0): 6 test emoji drawn "
                          "by a declared rule, their names in each language as queries")
    assert text_problems(fig) == []
    width, height = fig.get_size_inches() * ex.DPI
    assert width <= 1600 and height <= 1800  # was 1020 x 4730
    labels = [t for ax in fig.axes for t in ax.get_yticklabels()]
    assert len(labels) == 6 * len(LANGS) and min(t.get_fontsize() for t in labels) >= 9
    shown = " ".join(t.get_text() for t in labels)
    assert all(NAMES[lang] in shown for lang in ("jp", "ko", "zh"))
    assert "(name in the table)" not in shown and missing_glyphs(shown) == []
    assert "…" in shown  # the long Russian name, cut visibly


def test_figure8_fits_and_cuts_tags_only_with_an_ellipsis(tmp_path):
    from repro.report import examples as ex

    image = np.asarray(__import__("PIL.Image").Image.open(_thumbs(tmp_path, 1)[0]))
    long_tag = "hombre haciendo una reverencia profunda"
    listed = {lang: [(long_tag if lang == "es" else NAMES.get(lang, "ten-thirty"), i == 0)
                     for i in range(5)] for lang in ex.TAG_LANGS}
    fig = ex.draw_figure8([(NAMES["en"], image, listed)] * 6)
    assert text_problems(fig) == []
    text = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert long_tag not in text and shorten(long_tag, ex.TAG_COLUMNS) in text
    assert all(lang in ex.TAG_LANGS for lang in ("jp", "ko", "zh"))
    assert missing_glyphs(text) == []


def test_search_and_tag_sheets_fit_and_draw_every_script(tmp_path, monkeypatch):
    from repro.app import search

    figs = []
    monkeypatch.setattr(search, "_save", lambda fig, out: figs.append(fig))
    paths = [str(p) for p in _thumbs(tmp_path, 5)]
    search.search_sheet([{"query": "猫", "lang": "ja", "hits": [
        {"rank": i + 1, "score": 0.5, "path": p, "name": "猫の顔" if i else None}
        for i, p in enumerate(paths)]}], tmp_path / "s.png")
    tags = {"pl": "samochód dostawczy z bardzo długą nazwą", "jp": "にっこり笑う顔と細めた目",
            "tr": "gülen gözlerle sırıtan yüz"}
    search.tag_sheet([{"path": p, "tags": {lang: [{"tag": t, "score": 0.4}] * 5
                                           for lang, t in tags.items()}} for p in paths[:2]],
                     tmp_path / "t.png")
    for fig in figs:
        assert text_problems(fig) == []
    texts = [t.get_text() for fig in figs for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    joined = " ".join(texts)
    assert "query: 猫 (ja)" in joined and "猫の顔" in joined and missing_glyphs(joined) == []
    assert "samochód dostawczy z bardzo długą nazwą" not in joined and "…" in joined


def test_every_figure_of_a_small_grid_fits_its_canvas(mini_features, tmp_path, monkeypatch):
    """Figures 1-8 as ``reproduce`` draws them, from a grid of two seeds and one epoch: each
    is checked for text off the canvas or across another label as it is written."""
    from repro.core.fileio import save_png
    from repro.experiments.reproduce import run_grid
    from repro.report import figures
    from repro.report.outputs import write_all

    problems = {}

    def checked(fig, path):
        problems[Path(path).name] = text_problems(fig)
        save_png(fig, path)
    monkeypatch.setattr(figures, "save_png", checked)
    grid = run_grid("mini", tmp_path / "runs", seeds=(0, 1), arms=("PATR", "M3"),
                    towers=("muse",), sets=("epochs=1", "batch_size=256"), jobs=1,
                    log=lambda *_: None)
    write_all(grid, tmp_path / "tables")
    assert {"figure1_text_clusters_muse.png", "figure7_retrieval_examples_muse.png"} <= set(problems)
    assert {name: p for name, p in problems.items() if p} == {}
