"""What every picture of the package shares (the figures of ``paper_tables/``, the ``search``
and ``tag`` sheets): matplotlib on the Agg backend with a font for Chinese, Japanese and
Korean after the default one, text cut only with an ellipsis, labels placed clear of what
is drawn, and a check that a figure's text fits its canvas.

The CJK font is Noto Sans CJK from the PyPI package ``manimgx-fonts-cjk`` (a dependency:
one file, SIL Open Font License). It is a variable font whose default instance is the
thinnest weight, and matplotlib cannot choose a variable font's weight, so CJK text is drawn
thin; it is registered as both the normal and the bold weight so that either lookup finds it
without a warning.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from repro.core.errors import ReproError

#: The package and file of the CJK font, and the family (its first face, Japanese glyph
#: forms; every face holds every CJK glyph) that text falls back to.
CJK_PACKAGE = "manimgx_fonts_cjk"
CJK_FILE = "NotoSansCJK-VF.otf.ttc"
CJK_FAMILY = "Noto Sans CJK JP"
#: The font families in the order matplotlib tries them per character: its default sans
#: serif (DejaVu Sans: Latin, Greek, Cyrillic, symbols), then the CJK font.
FAMILIES = ["sans-serif", CJK_FAMILY]

ELLIPSIS = "…"


def cjk_font_path() -> Path:
    """The CJK font file of the installed ``manimgx-fonts-cjk``, or a one-line error."""
    try:
        import manimgx_fonts_cjk
    except ImportError:
        raise ReproError("the CJK font package is not installed: pip install "
                         "manimgx-fonts-cjk (a dependency of xlir-repro)") from None
    path = Path(manimgx_fonts_cjk.__file__).parent / CJK_FILE
    if not path.is_file():
        raise ReproError(f"{path}: missing; reinstall the PyPI package manimgx-fonts-cjk")
    return path


def register_fonts() -> None:
    """Register the CJK font with matplotlib and make it the fallback after the default font
    (rcParams ``font.family``); idempotent."""
    import matplotlib
    from matplotlib import font_manager

    path = str(cjk_font_path())
    manager = font_manager.fontManager
    if not any(e.fname == path for e in manager.ttflist):
        for weight in (400, 700):  # one face, drawn thin whatever is asked (module docstring)
            manager.ttflist.append(font_manager.FontEntry(
                fname=path, name=CJK_FAMILY, weight=weight, size="scalable"))  # face 0
        manager._findfont_cached.cache_clear()  # lookups made before would miss the new font
    matplotlib.rcParams["font.family"] = FAMILIES


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display) with :func:`register_fonts` done."""
    import matplotlib  # here, not at the top: the Agg backend must be chosen before pyplot loads

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    register_fonts()
    return plt


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal or a monospaced line: a wide or full-width
    character (Chinese, Japanese, Korean) counts two, a combining mark none, the rest one."""
    import unicodedata

    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def shorten(text: str, n: int) -> str:
    """``text`` if it is at most ``n`` columns wide (:func:`display_width`), else its longest
    start that, with "…" after it (trailing space dropped), is at most ``n`` columns: a cut
    always shows. ``n`` >= 1."""
    if n < 1:
        raise ValueError(f"shorten: n = {n}; must be >= 1")
    if display_width(text) <= n:
        return text
    cut = text
    while cut and display_width(cut) > n - 1:  # one column for the ellipsis
        cut = cut[:-1]
    return cut.rstrip() + ELLIPSIS


def fit_width(fig, text, margin_px: float = 8.0) -> None:
    """Re-wrap the matplotlib Text ``text`` (at word boundaries, fewest lines) until it is at
    most the figure's width less ``margin_px`` pixels on each side."""
    renderer = fig.canvas.get_renderer()
    words = " ".join(text.get_text().split("\n"))
    limit = fig.bbox.width - 2 * margin_px
    width = len(words)
    while width > 10:
        if text.get_window_extent(renderer).width <= limit:
            return
        width = int(width * 0.9)
        text.set_text(textwrap.fill(words, width, break_on_hyphens=False))


def boxes_of(artists, renderer, pad_px: float = 1.5) -> list:
    """Display-space boxes (pixels) of what ``artists`` draw, each piece separately so that
    a label can sit between them: one box per segment of a line or line collection, one per
    marker of a line or scatter; ``pad_px`` added on every side."""
    import numpy as np
    from matplotlib.collections import LineCollection, PathCollection
    from matplotlib.lines import Line2D
    from matplotlib.transforms import Bbox

    out = []

    def add(points, half=0.0):
        pts = np.atleast_2d(points)
        lo, hi = pts.min(axis=0) - half - pad_px, pts.max(axis=0) + half + pad_px
        out.append(Bbox([lo, hi]))

    for a in _flat(artists):
        if not a.get_visible():
            continue
        if isinstance(a, LineCollection):
            for seg in a.get_segments():
                add(a.get_transform().transform(seg))
        elif isinstance(a, PathCollection):
            sizes = a.get_sizes() if len(a.get_sizes()) else [36.0]
            half = float(np.sqrt(max(sizes))) / 2 * a.figure.dpi / 72
            for p in a.get_offset_transform().transform(a.get_offsets()):
                add(p, half)
        elif isinstance(a, Line2D):
            xy = a.get_transform().transform(a.get_xydata())
            if a.get_marker() not in (None, "", "None", " "):
                half = a.get_markersize() / 2 * a.figure.dpi / 72
                for p in xy:
                    add(p, half)
            if a.get_linestyle() not in ("None", "", " ") and len(xy) > 1:
                for p, q in zip(xy[:-1], xy[1:]):
                    add(np.array([p, q]))
    return out


def _flat(artists):
    """The artists of ``artists``, with lists, tuples and containers (an errorbar's
    line, caps and bars) opened."""
    for a in artists:
        if isinstance(a, (list, tuple)):  # matplotlib's Container is a tuple
            yield from _flat(a)
        elif a is not None:
            yield a


def _label_spots() -> list[tuple]:
    """Where :func:`place_labels` tries a label, nearest first: ((dx, dy) points from its
    anchor, horizontal and vertical alignment there); on rings of growing radius, beside
    the anchor before above or below it."""
    import math

    spots = []
    for radius in (6, 16, 28, 42, 58, 80, 105):
        for angle in (20, -20, 160, -160, 55, -55, 125, -125, 90, -90):
            dx, dy = radius * math.cos(math.radians(angle)), radius * math.sin(math.radians(angle))
            ha = "left" if dx > 2 else "right" if dx < -2 else "center"
            spots.append(((round(dx, 1), round(dy, 1)), ha, "bottom" if dy > 0 else "top"))
    return spots


#: :func:`_label_spots`; a label farther than LEADER_POINTS from its anchor gets a thin
#: leader line to it.
LABEL_SPOTS = _label_spots()
LEADER_POINTS = 10


def place_labels(ax, anchors, labels, obstacles, fontsize: float = 8) -> list:
    """Annotate each of ``labels`` at the first clear spot: for each of its anchors in turn
    (``anchors``: per label, a data point or a list of data points to try, e.g. a marker,
    then the ends of its error bar), each spot of :data:`LABEL_SPOTS`. A spot is clear when
    the label lies inside the axes and overlaps neither the artists ``obstacles``
    (:func:`boxes_of`) nor a label placed before; where none is, the label goes to the spot
    with the fewest overlaps. Call it after the figure's layout is final. Returns the
    annotations."""
    from matplotlib.text import Text

    fig = ax.figure
    fig.canvas.draw()  # the layout the boxes are measured in
    renderer = fig.canvas.get_renderer()
    blocked = boxes_of(obstacles, renderer)
    frame = ax.get_window_extent(renderer)
    placed = []
    for points, label in zip(anchors, labels):
        best = None
        tries = [(xy, spot) for xy in _points(points) for spot in LABEL_SPOTS]
        for xy, (offset, ha, va) in tries:
            far = abs(offset[0]) + abs(offset[1]) > LEADER_POINTS
            note = ax.annotate(label, xy, xytext=offset, textcoords="offset points",
                               ha=ha, va=va, fontsize=fontsize,
                               arrowprops=dict(arrowstyle="-", lw=0.6, color="0.45", shrinkA=1,
                                               shrinkB=4) if far else None)
            note.update_positions(renderer)
            box = Text.get_window_extent(note, renderer)  # the words, not the leader line
            inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
                      and box.y1 <= frame.y1)
            hits = sum(box.overlaps(b) for b in blocked) + (0 if inside else 100)
            if best is None or hits < best[0]:
                if best is not None:
                    best[1].remove()
                best = (hits, note, box)
            else:
                note.remove()
            if hits == 0:
                break
        blocked.append(best[2])
        placed.append(best[1])
    return placed


def _points(points) -> list:
    """One data point (x, y) or a list of them, as a list."""
    first = points[0]
    return [points] if not isinstance(first, (list, tuple)) else list(points)


def drawn_texts(fig) -> list:
    """The Text artists that drawing ``fig`` renders (recorded at the renderer, so a hidden
    axis's tick labels or a tick outside the view do not count), each once, in drawing order."""
    fig.canvas.draw()  # settles the layout and the renderer of this size
    renderer = fig.canvas.get_renderer()
    seen = {}

    def record(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if mtext is not None and s.strip():
            seen.setdefault(id(mtext), mtext)
        return draw(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    draw = renderer.draw_text
    renderer.draw_text = record
    try:
        fig.canvas.draw()
    finally:
        del renderer.draw_text
    return list(seen.values())


def text_problems(fig, tolerance_px: float = 1.0) -> list[str]:
    """What does not fit in ``fig``: every drawn text (:func:`drawn_texts`) whose box (pixels)
    leaves the canvas by more than ``tolerance_px``, and every pair of drawn texts whose boxes
    overlap by more than ``tolerance_px`` both ways. One line each; [] when all fit."""
    from matplotlib.text import Text

    texts = drawn_texts(fig)
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    # the words' boxes (an annotation's own box includes its leader line)
    boxes = [(t.get_text(), Text.get_window_extent(t, renderer)) for t in texts]
    problems = []
    for text, b in boxes:
        if (b.x0 < canvas.x0 - tolerance_px or b.y0 < canvas.y0 - tolerance_px
                or b.x1 > canvas.x1 + tolerance_px or b.y1 > canvas.y1 + tolerance_px):
            problems.append(f"outside the {canvas.width:.0f} x {canvas.height:.0f} px canvas: "
                            f"{text!r} at x {b.x0:.0f}..{b.x1:.0f}, y {b.y0:.0f}..{b.y1:.0f}")
    for i, (text_a, a) in enumerate(boxes):
        for text_b, b in boxes[i + 1:]:
            dx = min(a.x1, b.x1) - max(a.x0, b.x0)
            dy = min(a.y1, b.y1) - max(a.y0, b.y0)
            if dx > tolerance_px and dy > tolerance_px:
                problems.append(f"overlap of {dx:.0f} x {dy:.0f} px: {text_a!r} and {text_b!r}")
    return problems


def missing_glyphs(text: str, fontsize: float = 10) -> list[str]:
    """The characters of ``text`` that matplotlib, as :func:`register_fonts` sets it up, draws
    as the missing-glyph box: those that no font of its fallback list maps."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    register_fonts()
    prop = font_manager.FontProperties(family=FAMILIES, size=fontsize)
    paths = font_manager.fontManager._find_fonts_by_props(prop)
    fonts = [FT2Font(str(p)) for p in paths]  # face 0: the CJK font's first face is its family
    return [c for c in dict.fromkeys(text) if not c.isspace()
            and not any(f.get_char_index(ord(c)) for f in fonts)]
