"""The Python API: a trained model loaded once, its towers kept warm, searching and tagging in
batches::

    from repro import app
    m = app.load("runs/x")                                  # a run folder or an export folder
    m.search(["un chat", "a dog"], lang="fr", k=5)          # -> [Search, Search]
    m.tag(["img.png"], langs=["pl", "ja"], k=5)             # -> [Tagged]

The text tower loads at the first query and stays loaded (:attr:`Model.tower_loads` counts its
loads); image sets and tag vocabularies are embedded once per model and kept. Results are the
records of :mod:`repro.app.results`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repro.app import search
from repro.app.export import META, Loaded, load_export, load_run
from repro.app.results import Hit, ImageSetInfo, ModelInfo, Picture, Search, Tag, Tagged
from repro.core.errors import ReproError
from repro.data import emoji
from repro.training.evaluation import embed_images
from repro.training.tasks import image_features

#: The image sets of the emoji benchmark a search can rank by name: the test split (the
#: images no model saw in training or model selection) or every emoji.
EMOJI_SETS = {"test": "emoji benchmark, test split", "all": "emoji benchmark, all emoji"}
#: The emoji benchmark's split field of each ``emoji_split`` scheme.
SPLIT_FIELD = {"grouped": "split", "random": "split_random"}


def load(source: str | Path) -> "Model":
    """The model of ``source``: an export folder (it holds ``model.json``) or a finished run
    folder; every byte checked against the folder's ``digests.json``."""
    path = Path(source)
    return Model(load_export(path) if (path / META).is_file() else load_run(path))


@dataclass(frozen=True)
class ImageSet:
    """Images ready to rank: ``info`` (name, size), ``pictures`` (what each is) and
    ``embeddings`` (float32 (n, D), L2-normalised, in the order of ``pictures``)."""

    info: ImageSetInfo
    pictures: tuple[Picture, ...]
    embeddings: np.ndarray


class Model:
    """A loaded model (:class:`repro.app.export.Loaded`) with its text tower, image sets and
    tag vocabularies kept once embedded."""

    def __init__(self, loaded: Loaded):
        self.loaded = loaded
        self.tower_loads = 0  # how often the text tower was loaded (once at most)
        self._tower = None
        self._sets: dict = {}    # key -> ImageSet
        self._vocabs: dict = {}  # (lang, vocabulary) -> float32 (n_tags, D)

    # -- what it is ------------------------------------------------------------------------

    def info(self) -> ModelInfo:
        """The model's source, kind (run or export), arm, towers, profile and seed."""
        cfg, meta = self.loaded.cfg, self.loaded.meta
        kind = "export" if (self.loaded.source / META).is_file() else "run"
        return ModelInfo(source=str(self.loaded.source), kind=kind,
                         arm=str(meta.get("arm") or cfg.arm), text_tower=cfg.text_tower,
                         image_backbone=cfg.image_backbone, profile=cfg.profile, seed=cfg.seed)

    def text_tower(self):
        """The text tower, loaded at the first call and kept."""
        if self._tower is None:
            self._tower = search.make_text_tower(self.loaded.cfg)
            self.tower_loads += 1
        return self._tower

    # -- image sets ------------------------------------------------------------------------

    def images(self, which="test") -> ImageSet:
        """An image set, embedded once: ``"test"`` (the emoji test split), ``"all"`` (every
        emoji of the benchmark), a folder (its readable images; others skipped) or a list of
        image files."""
        if isinstance(which, str) and which in EMOJI_SETS:
            key = which
        elif isinstance(which, (str, Path)):
            key = ("folder", str(Path(which)))
        else:
            key = ("files", tuple(str(p) for p in which))
        if key not in self._sets:
            self._sets[key] = self._build_set(which, key)
        return self._sets[key]

    def _build_set(self, which, key) -> ImageSet:
        if key in EMOJI_SETS:
            return self._emoji_set(key)
        if key[0] == "folder":
            paths, _ = search.image_files(Path(which))
            name = str(which)
        else:
            paths = [search.check_image(Path(p)) for p in which]
            parents = {str(p.parent) for p in paths}
            name = parents.pop() if len(parents) == 1 else f"{len(paths)} image files"
        pictures = tuple(Picture(image_id=p.name, path=str(p)) for p in paths)
        return ImageSet(ImageSetInfo(name, len(paths)), pictures,
                        search.embed_image_files(self.loaded, paths))

    def _emoji_set(self, which: str) -> ImageSet:
        """The emoji benchmark's test split or all of it; its backbone features are read from
        the cache entry of all emoji (which the task that trained the model filled)."""
        if self.loaded.cfg.profile != "mini":
            raise ReproError("the paper profile's test images need --images DIR (the XTD10 "
                             "images)")
        if "all" not in self._sets:
            bench = emoji.load_emoji()
            paths = emoji.emoji_image_paths(bench)
            field = SPLIT_FIELD[self.loaded.cfg.emoji_split]
            pictures = tuple(Picture(image_id=it["twemoji"], path=str(p), split=it[field],
                                     emoji=it["cp"], names=dict(it["name"]))
                             for it, p in zip(bench.items, paths))
            counts = {s: sum(p.split == s for p in pictures) for s in ("train", "val", "test")}
            embeddings = embed_images(self.loaded.model, image_features(self.loaded.cfg, paths))
            self._sets["all"] = ImageSet(ImageSetInfo(EMOJI_SETS["all"], len(pictures), counts),
                                         pictures, embeddings)
        every = self._sets["all"]
        if which == "all":
            return every
        rows = [i for i, p in enumerate(every.pictures) if p.split == "test"]
        return ImageSet(ImageSetInfo(EMOJI_SETS["test"], len(rows)),
                        tuple(every.pictures[i] for i in rows), every.embeddings[rows])

    # -- search and tag --------------------------------------------------------------------

    def search(self, queries, lang: str = "en", k: int = 5, images="test") -> list[Search]:
        """The ``k`` images of ``images`` (see :meth:`images`) nearest to each query (a string
        or a list of them, all in language ``lang``: a code of
        :data:`repro.data.paper.LANGS`, or ``ja`` for ``jp``), best first: one :class:`Search`
        per query. The queries are embedded together, by the warm tower."""
        queries = [queries] if isinstance(queries, str) else list(queries)
        code = search.check_lang(lang)
        if k < 1:
            raise ReproError(f"-k {k}: must be >= 1")
        vectors = search.embed_queries(self.loaded, queries, code, tower=self.text_tower)
        image_set = self.images(images)
        idx, scores = search.top_k(vectors, image_set.embeddings, k)
        return [Search(query, lang, tuple(_hit(r + 1, float(s), image_set.pictures[i], code)
                                          for r, (i, s) in enumerate(zip(row, srow))))
                for query, row, srow in zip(queries, idx, scores)]

    def tag(self, images, langs=("en",), k: int = 5, vocab=None) -> list[Tagged]:
        """The ``k`` tags nearest to each image (file paths; an image of a set already loaded
        is not embedded again) in each language of ``langs`` (codes as in :meth:`search`;
        the results are keyed by the codes as given): from ``vocab`` (a list of tags, the same
        for every language) or the CLDR keyword vocabulary of each language (Table 3's)."""
        langs = [langs] if isinstance(langs, str) else list(langs)
        codes = [search.check_lang(lang) for lang in langs]
        if not langs:
            raise ReproError("--lang: no language; give one or more codes (e.g. pl,ja)")
        if k < 1:
            raise ReproError(f"-k {k}: must be >= 1")
        pictures, embeddings = self._pictures_of(images)
        per_lang = {}
        for lang, code in zip(langs, codes):
            words = list(vocab) if vocab is not None else search.vocabulary(code)
            idx, scores = search.top_k(embeddings, self._vocab_embeddings(code, words), k)
            per_lang[lang] = [tuple(Tag(r + 1, round(float(s), 4), words[j])
                                    for r, (j, s) in enumerate(zip(row, srow)))
                              for row, srow in zip(idx, scores)]
        return [Tagged(p, {lang: per_lang[lang][n] for lang in langs})
                for n, p in enumerate(pictures)]

    def _vocab_embeddings(self, code: str, words: list[str]) -> np.ndarray:
        """Embeddings of a tag vocabulary, float32 (n_tags, D): tower features through the
        feature cache (the tower loads only on a miss), kept for the model's life."""
        key = (code, tuple(words))
        if key not in self._vocabs:
            self._vocabs[key] = search.embed_queries(self.loaded, words, code, cache=True,
                                                     tower=self.text_tower)
        return self._vocabs[key]

    def _pictures_of(self, images) -> tuple[list[Picture], np.ndarray]:
        """What each image file is and its embedding, float32 (n, D): an emoji image of the
        benchmark is named and read from the emoji set, an image of a set already loaded from
        that set; any other file is embedded (backbone features cached by content)."""
        paths = [Path(p) for p in ([images] if isinstance(images, (str, Path)) else images)]
        known = self._known_pictures(paths)
        new = [p for p in paths if str(p) not in known]
        if new:
            fresh = self.images([search.check_image(p) for p in new])
            known.update({pic.path: (pic, fresh.embeddings[i])
                          for i, pic in enumerate(fresh.pictures)})
        pictures = [known[str(p)][0] for p in paths]
        return pictures, np.stack([known[str(p)][1] for p in paths])

    def _known_pictures(self, paths: list[Path]) -> dict:
        """path -> (Picture, embedding (D,)) of the images of ``paths`` that a loaded set holds,
        loading the emoji set when one of them is a Twemoji image of the benchmark."""
        if self.loaded.cfg.profile == "mini" and any(_is_twemoji(p) for p in paths):
            self.images("all")
        known = {}
        for image_set in self._sets.values():
            for i, pic in enumerate(image_set.pictures):
                known.setdefault(_key(pic.path), (pic, image_set.embeddings[i]))
        return {str(p): known[_key(p)] for p in paths if _key(p) in known}


def _is_twemoji(path: Path) -> bool:
    """Is ``path`` one of the Twemoji images of the emoji benchmark's package?"""
    return Path(path).resolve().parent == emoji.twemoji_dir().resolve()


def _key(path) -> str:
    """A file's identity among the images of loaded sets: its resolved path."""
    return str(Path(path).resolve())


def _hit(rank: int, score: float, pic: Picture, code: str) -> Hit:
    """The :class:`Hit` of picture ``pic`` at ``rank`` for a query in language ``code``."""
    return Hit(rank=rank, score=round(score, 4), name=pic.name(code), name_en=pic.name("en"),
               emoji=pic.emoji, image_id=pic.image_id, path=pic.path, split=pic.split)
