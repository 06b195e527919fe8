"""Search images with a text query and tag images with words, in any language, with a trained
model (:mod:`repro.app.export`): the engine of ``python -m repro search`` and ``tag``.

Images go through the model's frozen backbone once (the feature cache, keyed by content);
texts through its frozen text tower (the same cache) and its text head. Ranking is one matrix
product over L2-normalised embeddings (cosine similarity), ties broken by input order.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from repro.app.export import Loaded
from repro.core.drawing import pyplot, shorten
from repro.core.errors import ReproError, reason
from repro.core.fileio import existing_folder, save_png
from repro.data import emoji
from repro.data.paper import CLDR_CODE, LANGS
from repro.towers.backbones import load_rgb
from repro.towers.text import make_text_tower
from repro.training.evaluation import embed_images, embed_texts
from repro.training.tasks import center_features, image_features, text_features_of

#: Codes a user may type for a language of :data:`repro.data.paper.LANGS` (ISO 639-1 for Japanese).
LANG_ALIASES = {cldr: ours for ours, cldr in CLDR_CODE.items()}  # ja -> jp
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")

#: The longest query or tag (characters) that ``search`` and ``tag`` embed. The models were
#: trained on short texts (emoji names and keywords: at most a few hundred characters; COCO
#: and XTD10 captions: one sentence), and a text tower reads a bounded input: mBERT its first
#: :data:`repro.towers.text.MBERT_MAX_LENGTH` tokens (a few hundred characters; a query it
#: reads only in part is embedded with a notice, :func:`say_left_out`). A longer text is a
#: pasted document, not a query: it is refused rather than embedded in part or far outside
#: what the model saw.
MAX_QUERY_CHARS = 1000


def check_query(text: str, what: str = "query") -> str:
    """``text`` if it is a query the towers can embed whole: not blank, at most
    :data:`MAX_QUERY_CHARS` characters; else a one-line error naming ``what`` (the option,
    or the file and line it came from)."""
    if not text.strip():
        raise ReproError(f"{what}: empty text; give a non-empty query")
    if len(text) > MAX_QUERY_CHARS:
        raise ReproError(f"{what}: {len(text):,} characters, over the limit of "
                         f"{MAX_QUERY_CHARS:,} (a query is a phrase; the text towers read short "
                         "texts)")
    return text


def check_lang(code: str) -> str:
    """The package's code of language ``code`` (``ja`` -> ``jp``), or a one-line error."""
    lang = LANG_ALIASES.get(code.strip().lower(), code.strip().lower())
    if lang not in LANGS:
        raise ReproError(f"--lang {code}: unknown language; expected one of "
                         f"{', '.join(LANGS)} (or ja for jp)")
    return lang


def embed_queries(m: Loaded, texts: list[str], lang: str, cache: bool = False,
                  tower=None) -> np.ndarray:
    """Text embeddings of ``texts`` in ``lang``, float32 (n, D), L2-normalised: tower features
    (through the feature cache when ``cache``), the model's text preprocessing, its text head.
    ``tower``: the model's text tower already loaded, or a zero-argument function that loads
    it (called only when a feature must be computed); None: loaded here when needed."""
    if not texts:
        raise ReproError("query: empty text; give a non-empty query")
    for text in texts:
        check_query(text)
    if not cache:  # a query is embedded afresh (not cached): the tower is needed now
        tower = make_text_tower(m.cfg) if tower is None else tower
        tower = tower if hasattr(tower, "encode") else tower()
        say_left_out(tower, m.cfg.text_tower, texts)
    feats = text_features_of(m.cfg, texts, lang, cache, tower)
    if m.text_mean is not None:
        feats = center_features(feats, m.text_mean)
    return embed_texts(m.model, feats)


def say_left_out(tower, name: str, texts: list[str]) -> None:
    """A notice on stderr for each text the loaded ``tower`` (named ``name``) reads only the
    start of (mBERT: its first 128 tokens); towers that read whole texts say nothing."""
    if not hasattr(tower, "tokens_left_out"):
        return
    for text in texts:
        n, cut = tower.tokens_left_out(text)
        if cut:
            print(f"notice: query: {n} tokens; the {name} tower reads the first {n - cut}, the "
                  f"last {cut} are left out", file=sys.stderr)


def _decodes(path: Path) -> str | None:
    """None when ``path`` is an image the backbone's loader reads, else why not."""
    try:
        load_rgb(path).load()
        return None
    except ReproError as exc:  # the loader's wrapping of PIL's OSError
        return f"does not decode ({reason(exc.__context__ or exc)})"
    except Exception as exc:  # PIL raises many types for a corrupt file (a decompression bomb)
        return f"does not decode ({reason(exc)})"


def check_image(path: Path) -> Path:
    """``path`` if it is a readable image file, else a one-line error naming it."""
    if path.is_dir():
        raise ReproError(f"{path}: is a folder, not an image file")
    if not path.is_file():
        raise ReproError(f"{path}: no such image file")
    why = _decodes(path)
    if why:
        raise ReproError(f"{path}: not a readable image: {why}")
    return path


def image_files(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The readable images of ``folder`` (sorted by name) and the skipped files with why:
    a file without an image suffix, or one that does not decode."""
    folder = existing_folder(folder, "--images")
    good, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append((path, "not an image file"))
            continue
        why = _decodes(path)
        if why:
            skipped.append((path, why))
        else:
            good.append(path)
    if not good:
        raise ReproError(f"--images {folder}: no readable image ({skipped_summary(skipped)})")
    return good, skipped


def skipped_summary(skipped: list[tuple[Path, str]]) -> str:
    """The skipped files of a folder in a few words: how many, and the first with why."""
    if not skipped:
        return "no file in it"
    first, why = skipped[0]
    more = f"; {len(skipped) - 1} more skipped" if len(skipped) > 1 else ""
    return f"{first.name}: {why}{more}"


def embed_image_files(m: Loaded, paths: list[Path]) -> np.ndarray:
    """Image embeddings of image files, float32 (n, D): backbone features (cached by content),
    then the model's image head."""
    return embed_images(m.model, image_features(m.cfg, list(paths)))


def top_k(queries: np.ndarray, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best items per query by cosine (rows L2-normalised): (indices, scores), each
    (n_queries, k), best first; equal scores in item order. One matrix product."""
    if k < 1:
        raise ReproError(f"-k {k}: must be >= 1")
    k = min(k, items.shape[0])
    scores = queries @ items.T
    if k == items.shape[0]:
        order = np.argsort(-scores, axis=1, kind="stable")
    else:  # only the items at or above each row's k-th best score are sorted
        kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
        order = np.empty((scores.shape[0], k), dtype=np.int64)
        for r, row in enumerate(scores):
            cand = np.flatnonzero(row >= kth[r])  # in item order, so ties stay in item order
            order[r] = cand[np.argsort(-row[cand], kind="stable")[:k]]
    return order, np.take_along_axis(scores, order, axis=1)


def vocabulary(lang: str, path: Path | None = None) -> list[str]:
    """Tags to rank: one a line of ``path`` (UTF-8; blank lines dropped; duplicates kept once),
    or the CLDR keyword vocabulary of ``lang`` that Table 3 uses."""
    if path is None:
        return emoji.load_emoji().tag_vocabulary(lang)[0]
    path = Path(path)
    if path.is_dir():
        raise ReproError(f"--vocab {path}: is a folder, expected a file (one tag a line, UTF-8)")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReproError(f"--vocab {path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise ReproError(f"--vocab {path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ReproError(f"--vocab {path}: unreadable ({why})") from None
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if len(line.strip()) > MAX_QUERY_CHARS:
            check_query(line.strip(), f"--vocab {path}: line {number}")
    words = list(dict.fromkeys(w.strip() for w in lines if w.strip()))
    if not words:
        raise ReproError(f"--vocab {path}: no tag in it (one tag a line)")
    return words


def _thumb(ax, path: str, title: str, colour: str = "black") -> None:
    ax.imshow(np.asarray(load_rgb(Path(path))))
    ax.set_title(title, fontsize=8, color=colour)
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig, out: Path) -> None:
    """Write ``fig`` to ``out`` as PNG atomically (:func:`repro.core.fileio.save_png`) and close it."""
    save_png(fig, out)
    pyplot().close(fig)


def search_sheet(searches: list[dict], out: Path) -> None:
    """A contact sheet of a search: one row per query (``Search.to_dict()`` of
    :mod:`repro.app.results`), its top images, each with its rank, score and name; any
    script (:mod:`repro.core.drawing`'s CJK fallback), cut with "…" when long."""
    plt = pyplot()
    cols = max(len(s["hits"]) for s in searches)
    fig, axes = plt.subplots(len(searches), cols, figsize=(1.7 * cols, 2.1 * len(searches)),
                             squeeze=False)
    for row, s in zip(axes, searches):
        for ax in row[len(s["hits"]):]:
            ax.axis("off")
        for ax, h in zip(row, s["hits"]):
            label = h["name"] if h["name"] is not None else Path(h["path"]).name
            _thumb(ax, h["path"], f"{h['rank']}. {h['score']:.3f}\n{shorten(label, 18)}")
        row[0].set_ylabel(f"{shorten(s['query'], 24)} ({s['lang']})", fontsize=7)
    fig.suptitle(shorten("query: " + "; ".join(f"{s['query']} ({s['lang']})" for s in searches),
                         12 * cols), fontsize=9)
    _save(fig, out)


def tag_sheet(per_image: list[dict], out: Path) -> None:
    """A contact sheet of tagging: each image beside its top tags in every language (any
    script), a tag cut with "…" when long."""
    plt = pyplot()
    langs = list(per_image[0]["tags"])
    fig, axes = plt.subplots(len(per_image), 1 + len(langs), squeeze=False,
                             figsize=(1.7 + 2.3 * len(langs), 1.8 * len(per_image)))
    for row, item in zip(axes, per_image):
        _thumb(row[0], item["path"], shorten(Path(item["path"]).name, 20))
        for ax, lang in zip(row[1:], langs):
            ax.axis("off")
            ax.text(0, 1, lang + "\n" + "\n".join(f"{shorten(t['tag'], 20)}  {t['score']:.2f}"
                                                   for t in item["tags"][lang]),
                    va="top", fontsize=8)
    _save(fig, out)
