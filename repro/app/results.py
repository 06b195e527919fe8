"""The typed results of search and tag (:mod:`repro.app.model`): frozen records that the
command line's text, JSON and contact-sheet outputs and the search page all print
(:mod:`repro.app.render`). No torch, no NumPy: plain values only.

Scores are cosine similarities in [-1, 1] of L2-normalised embeddings; ranks start at 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Picture:
    """One image that can be searched or tagged. For an emoji of the benchmark: ``emoji`` (the
    character), ``names`` (its CLDR name in each of the package's language codes) and ``split``
    (train, val or test); for any other file these are empty. ``image_id`` is the Twemoji file
    stem (e.g. ``1f431``) or the file's name."""

    image_id: str
    path: str
    split: str | None = None
    emoji: str | None = None
    names: dict = field(default_factory=dict)

    def name(self, lang: str) -> str | None:
        """Its name in the package's language code ``lang`` (None: not an emoji)."""
        return self.names.get(lang)


@dataclass(frozen=True)
class Hit:
    """One image found for a query: ``rank`` (1 = best), ``score`` (cosine), ``name`` (in the
    query's language) and ``name_en`` (English; both None for a file that is not an emoji of
    the benchmark), ``emoji`` (the character or None), ``image_id``, ``path`` and ``split``
    (train / val / test of the emoji benchmark, or None)."""

    rank: int
    score: float
    name: str | None
    name_en: str | None
    emoji: str | None
    image_id: str
    path: str
    split: str | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Search:
    """The hits for one query: ``query`` (as given), ``lang`` (the code the user gave, e.g.
    ``ja``) and ``hits`` (best first)."""

    query: str
    lang: str
    hits: tuple[Hit, ...]

    def to_dict(self) -> dict:
        return {"query": self.query, "lang": self.lang,
                "hits": [h.to_dict() for h in self.hits]}


@dataclass(frozen=True)
class Tag:
    """One tag of an image: ``rank`` (1 = best), ``score`` (cosine), ``tag`` (a word of the
    vocabulary)."""

    rank: int
    score: float
    tag: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Tagged:
    """The tags of one image: ``picture`` (what it is) and ``tags`` (language code as the user
    gave it -> its tags, best first)."""

    picture: Picture
    tags: dict

    def to_dict(self) -> dict:
        return {**asdict(self.picture), "tags": {lang: [t.to_dict() for t in ts]
                                                 for lang, ts in self.tags.items()}}


@dataclass(frozen=True)
class ImageSetInfo:
    """What a search ranks: ``name`` (e.g. ``emoji benchmark, test split``, or a folder),
    ``size`` (images) and ``splits`` (emoji per split, empty for a folder)."""

    name: str
    size: int
    splits: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """One line: ``images: NAME, N images (train a, val b, test c)``."""
        parts = ", ".join(f"{s} {n:,}" for s, n in self.splits.items())
        return f"images: {self.name}, {self.size:,} images" + (f" ({parts})" if parts else "")


@dataclass(frozen=True)
class ModelInfo:
    """Which model answers: ``source`` (the folder), ``kind`` (``run`` or ``export``),
    ``arm`` (the training variant, e.g. ``M3 lambda=1``), ``text_tower``, ``image_backbone``,
    ``profile`` and ``seed``."""

    source: str
    kind: str
    arm: str
    text_tower: str
    image_backbone: str
    profile: str
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """One line: ``model: SOURCE (run; arm ..., text tower ..., backbone ..., seed N)``."""
        return (f"model: {self.source} ({self.kind}; arm {self.arm}, text tower "
                f"{self.text_tower}, image backbone {self.image_backbone}, {self.profile} "
                f"profile, seed {self.seed})")
