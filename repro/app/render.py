"""What ``search`` and ``tag`` print, from the records of :mod:`repro.app.results`: a header
naming the model and the image set, then one line per hit (rank, score, the emoji, its name in
the query's language and in English, its split and id) or one table per image (its tags in
each language side by side); or the same as JSON. The contact sheets take the same records
(:func:`repro.app.search.search_sheet`, :func:`repro.app.search.tag_sheet`)."""

from __future__ import annotations

import unicodedata

from repro.app.results import Hit, ImageSetInfo, ModelInfo, Search, Tagged

#: Display columns of one tag in the side-by-side table (a longer tag is cut with an ellipsis).
TAG_COLUMNS = 24


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: East Asian wide and full-width characters two,
    combining marks, joiners and variation selectors none, others one."""
    cols = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        cols += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return cols


def fit(text: str, cols: int) -> str:
    """``text`` cut to at most ``cols`` display columns (ending in ``…`` when cut), then padded
    with spaces to exactly ``cols``."""
    if display_width(text) > cols:
        out = ""
        for ch in text:
            if display_width(out + ch) > cols - 1:
                break
            out += ch
        text = out + "…"
    return text + " " * (cols - display_width(text))


def hit_label(hit: Hit) -> str:
    """What a hit is, in words: ``🐈 gato / cat`` for an emoji (its name in the query's
    language, then in English when that differs), the file's name otherwise."""
    if hit.name is None:
        return hit.image_id
    names = hit.name if hit.name == hit.name_en else f"{hit.name} / {hit.name_en}"
    return f"{hit.emoji} {names}" if hit.emoji else names


def search_lines(model: ModelInfo, images: ImageSetInfo, searches: list[Search]) -> list[str]:
    """The text output of ``search``: the header, then per query its hits, one a line."""
    lines = [model.line(), images.line()]
    for s in searches:
        lines += ["", f"query {s.query!r} ({s.lang}): top {len(s.hits)}",
                  "  rank  score   " + ("split  " if _has_splits(s) else "") + "image"]
        for h in s.hits:
            split = f"{h.split or '':<5}  " if _has_splits(s) else ""
            where = f"  [{h.image_id}]" if h.name is not None else f"  {h.path}"
            lines.append(f"  {h.rank:>4}  {h.score:.4f}  {split}{hit_label(h)}{where}")
    return lines


def _has_splits(s: Search) -> bool:
    return any(h.split for h in s.hits)


def search_json(model: ModelInfo, images: ImageSetInfo, searches: list[Search]) -> dict:
    """The JSON output of ``search``: model, image set, and per query its hits."""
    return {"model": model.to_dict(), "images": images.to_dict(),
            "searches": [s.to_dict() for s in searches]}


def picture_line(t: Tagged) -> str:
    """The heading of one image's tags: the emoji, its English name, id and split, then its
    path; or only the path for a file that is not an emoji of the benchmark."""
    p = t.picture
    if p.emoji is None:
        return f"image: {p.path}"
    return f"image: {p.emoji} {p.name('en')} ({p.image_id}, {p.split} split)  {p.path}"


def tag_lines(model: ModelInfo, tagged: list[Tagged]) -> list[str]:
    """The text output of ``tag``: the header, then per image a table of its tags, one column
    per language (as the user named it), each tag cut to :data:`TAG_COLUMNS` columns with an
    ellipsis."""
    lines = [model.line()]
    for t in tagged:
        langs = list(t.tags)
        lines += ["", picture_line(t),
                  "  rank  " + "  ".join(fit(lang, TAG_COLUMNS + 7) for lang in langs).rstrip()]
        for r in range(max(len(v) for v in t.tags.values())):
            cells = [f"{fit(t.tags[lang][r].tag, TAG_COLUMNS)} {t.tags[lang][r].score:.3f}"
                     if r < len(t.tags[lang]) else " " * (TAG_COLUMNS + 6) for lang in langs]
            lines.append(f"  {r + 1:>4}  " + "  ".join(cells).rstrip())
    return lines


def tag_json(model: ModelInfo, langs: list[str], tagged: list[Tagged]) -> dict:
    """The JSON output of ``tag``: model, languages (as given), and per image its tags."""
    return {"model": model.to_dict(), "langs": list(langs),
            "images": [t.to_dict() for t in tagged]}
