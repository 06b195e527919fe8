"""What one training run sees, for each profile: tensors of frozen features and images.

``mini``: the emoji benchmark (train on English captions of the training emoji, select on
100 English-validation emoji, test on 500 held-out emoji in 11 languages, tag them with
each language's keyword vocabulary; the split keeps near-duplicate groups whole). ``paper``: COCO 2014 English captions for training and
validation, XTD10 (1000 COCO images, 11 languages) for test.

Every text carries its language; :func:`assert_english` guards training and selection.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from repro.core import parallel
from repro.core.device import resolve_device
from repro.core.errors import ReproError
from repro.core.fileio import folder_problem
from repro.core.progress import batch_starts
from repro.data import emoji, paper
from repro.data.textids import TextNumbering
from repro.towers.backbones import image_features as backbone_features
from repro.towers.cache import text_features
from repro.towers.text import make_text_tower, text_tower


#: The topics of a run's notes (``RunResult.notes``, ``Task.notes``): a table quotes the notes
#: of its topic, never a sentence found by its words.
NOTE_TOPICS = {
    "tagging": "why the run has no tagging numbers",
    "alignment": "why the run has no XTD10 alignment numbers",
    "features": "how the text features were preprocessed",
    "training": "what the loss could not train",
    "data": "what the training data holds that the protocol would not",
}


def with_note(notes: dict, topic: str, text: str) -> dict:
    """A copy of ``notes`` with ``text`` added under ``topic`` (one of :data:`NOTE_TOPICS`)."""
    if topic not in NOTE_TOPICS:
        raise ValueError(f"note topic {topic!r} is not one of {', '.join(NOTE_TOPICS)}")
    return {**notes, topic: [*notes.get(topic, []), text]}


@dataclass
class TextSet:
    """Captions as frozen tower features, with the item of each, their language and the id
    of each caption's normalised text (:mod:`repro.data.textids`; one numbering per task, across
    languages, so equal ids mean equal texts in any two sets of the task)."""

    feats: torch.Tensor          # (n, text_dim) float32
    item: np.ndarray             # (n,) index into the image set it goes with
    lang: str
    text_id: np.ndarray | None = None  # (n,) int64


@dataclass(kw_only=True)
class Task:
    profile: str
    text_dim: int
    image_feat_dim: int          # width of the frozen backbone's pooled features
    train_images: torch.Tensor   # (n_train_images, image_feat_dim) cached backbone features
    train_text: TextSet          # English captions, item -> train image row
    val_images: torch.Tensor
    val_text: TextSet            # English, item -> val image row
    val_groups: TextSet          # English val captions incl. extra ones (diagnostics)
    test_images: torch.Tensor
    test_text: dict              # lang -> TextSet, item -> test image row
    tags: dict                   # lang -> (TextSet of the vocabulary, list of tag arrays) or {}
    xtd10_text: dict             # lang -> TextSet of XTD10 captions (alignment), may be {}
    notes: dict = field(default_factory=dict)  # topic (NOTE_TOPICS) -> sentences
    data_sha256: dict = field(default_factory=dict)
    # lang -> TextSet of unlabeled non-test text (language centering's means; no image is
    # used): the training emoji's names in each non-English language; {} when there is none
    unlabeled: dict = field(default_factory=dict)


def assert_english(text_set: TextSet, where: str) -> None:
    """Zero-shot protocol guard: fail loudly if non-English text reaches ``where``."""
    if text_set.lang != "en":
        raise RuntimeError(f"zero-shot protocol violated: {text_set.lang!r} text reached {where}; "
                           "only English may be used for training and model selection")


def tower_meta(cfg, load=None) -> dict:
    """Everything that decides a text tower's features, for the feature-cache key: the
    tower's own parts (its options' values, weights by sha256 or revision, preprocessing,
    truncation, batch, device: :meth:`repro.towers.text.TextTower.key_parts`) and how they are
    computed. No thread count: features are computed in chunks of :data:`TEXT_CHUNK` texts,
    each on one thread. ``load()`` (default: a new tower) is asked for the weights' id only
    when they can be identified no other way (mBERT to be downloaded)."""
    return dict(text_tower(cfg.text_tower).key_parts(cfg, load), compute=COMPUTE)


#: Texts per chunk of feature work: one batch of mUSE and E5, four of mBERT, so a chunk
#: computes exactly the batches one pass over all texts would.
TEXT_CHUNK = 256
#: How every text feature is computed (part of the cache key; no thread or worker count).
COMPUTE = f"chunks of {TEXT_CHUNK} texts, each on one thread"

_PROCESS_TOWERS: dict = {}  # this process's loaded towers (a worker loads each one once)


def encode_chunk(cfg, texts: list[str]) -> np.ndarray:
    """``cfg``'s text tower over one chunk of texts, float32 (n, dim): what a worker process
    runs (it loads the tower on its first chunk, and keeps it for the chunks of every config
    equal on the tower, the device and the tower's options)."""
    key = (cfg.text_tower, cfg.device) + text_tower(cfg.text_tower).settings(cfg)
    if key not in _PROCESS_TOWERS:
        _PROCESS_TOWERS[key] = make_text_tower(cfg)
    return _PROCESS_TOWERS[key].encode(texts)


class _Encoder:
    """Frozen-tower features for lists of texts, through the cache. A miss is computed in
    chunks of :data:`TEXT_CHUNK` texts, each on one thread: in the worker processes of
    ``pool`` (each loads its own tower), or in this process when ``pool`` is None or the
    tower runs on a GPU (the tower is then loaded lazily, once)."""

    def __init__(self, cfg, tower=None, pool=None):
        self.cfg = cfg
        # ``tower``: a loaded tower, or a zero-argument function that loads one (shared
        # between tasks); either is used only on a cache miss computed in this process
        loaded = tower is not None and hasattr(tower, "encode")
        self._tower = tower if loaded else None
        self._make = tower if tower is not None and not loaded else (lambda: make_text_tower(cfg))
        on_gpu = (text_tower(cfg.text_tower).on_device
                  and resolve_device(cfg.device).type != "cpu")
        self.pool = None if on_gpu else pool
        self.meta = tower_meta(cfg, self.tower)
        self._numbering = TextNumbering()  # one text-id numbering for all the task's sets
        self.sets_done, self.sets_total = 0, 0

    def tower(self):
        if self._tower is None:
            self._tower = self._make()
        return self._tower

    def _compute(self, texts: list[str]) -> np.ndarray:
        chunks = [texts[i:i + TEXT_CHUNK] for i in range(0, len(texts), TEXT_CHUNK)]
        ticks = batch_starts(len(texts), TEXT_CHUNK, f"{self.cfg.text_tower} text features",
                             "texts")
        next(ticks, None)
        if self.pool is None:
            tower = self.tower()  # loaded before the thread limit, which then covers it
            with parallel.one_thread():
                out = []
                for c in chunks:
                    out.append(tower.encode(c))
                    next(ticks, None)
                return np.concatenate(out)
        return np.concatenate(parallel.map_ordered(self.pool, encode_chunk,
                                                   [(self.cfg, c) for c in chunks],
                                                   tick=lambda: next(ticks, None)))

    def __call__(self, texts, lang, item, what: str = "texts") -> TextSet:
        texts = list(texts)
        self.sets_done += 1
        chunks = -(-len(texts) // TEXT_CHUNK)
        where = (f"{parallel.workers_of(self.pool)} worker processes" if self.pool is not None
                 else "this process")
        total = f" of {self.sets_total}" if self.sets_total else ""
        feats = text_features(
            self.cfg.text_tower, self.meta, texts, self._compute,
            what=f"{len(texts):,} {what} ({lang}), text set {self.sets_done}{total}, "
                 f"{chunks} chunk{'s' if chunks != 1 else ''} on {where}")
        return TextSet(torch.from_numpy(feats), np.asarray(item, dtype=np.int64), lang,
                       self._numbering.ids(texts))


def text_features_of(cfg, texts: list[str], lang: str, cache: bool = True,
                     tower=None) -> torch.Tensor:
    """``cfg``'s tower features of ``texts``, float32 (n, text_dim), in chunks of
    :data:`TEXT_CHUNK` on one thread: through the feature cache, or (``cache=False``, for
    one-off queries that would only clutter it) straight from the tower (``tower``: one
    already loaded)."""
    texts, enc = list(texts), _Encoder(cfg, tower)
    if cache:
        return enc(texts, lang, np.arange(len(texts)), "texts").feats
    return torch.from_numpy(enc._compute(texts))  # the cache's own chunked computation


def english_mean(task: Task) -> torch.Tensor:
    """center_en's vector: the mean tower feature of the English training captions, (1, dim)."""
    return task.train_text.feats.mean(dim=0, keepdim=True)


def center_features(feats: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """center_en applied to tower features (n, dim): minus ``mean``, L2-renormalised."""
    return torch.nn.functional.normalize(feats - mean, dim=1)


def center_on_english(task: Task) -> Task:
    """``text_preprocess=center_en``: every text feature of ``task`` minus the mean feature of
    the English training captions, L2-renormalised (a label-free repair of an anisotropic
    tower, whose unrelated texts sit at a high cosine). The same vector is subtracted in every
    language: this is not language centering (:mod:`repro.towers.controlled`)."""
    mean = english_mean(task)

    def center(ts: TextSet) -> TextSet:
        return dataclasses.replace(ts, feats=center_features(ts.feats, mean))

    return dataclasses.replace(
        task, train_text=center(task.train_text), val_text=center(task.val_text),
        val_groups=center(task.val_groups),
        test_text={l: center(t) for l, t in task.test_text.items()},
        tags={l: (center(v), lists) for l, (v, lists) in task.tags.items()},
        xtd10_text={l: center(t) for l, t in task.xtd10_text.items()},
        unlabeled={l: center(t) for l, t in task.unlabeled.items()},
        notes=with_note(task.notes, "features", "text features centered on the English training "
                        "captions' mean and L2-renormalised (text_preprocess=center_en)"))


def xtd10_dir(cfg) -> Path | None:
    """The XTD10 folder to use, or None when none is configured or present."""
    if cfg.xtd10_root:
        return Path(cfg.xtd10_root)
    if os.environ.get("XLIR_XTD10_DIR"):
        return Path(os.environ["XLIR_XTD10_DIR"])
    cached_dir = paper.cache_dir() / f"xtd10-{paper.XTD10_COMMIT[:7]}"
    complete = all((cached_dir / rel).is_file() for rel in paper.xtd10_sums())
    return cached_dir if complete else None  # a failed download leaves an incomplete folder


def _xtd10_alignment_text(cfg, enc: _Encoder) -> tuple[dict, str | None]:
    """(lang -> XTD10 caption features, None), or ({}, why not)."""
    root = xtd10_dir(cfg)
    if root is None:
        return {}, "XTD10 text alignment not run: no XTD10 folder (set XLIR_XTD10_DIR)"
    x = paper.load_xtd10(root)
    return {lang: enc(x.captions[lang], lang, np.arange(1000), "XTD10 captions (Table 4)")
            for lang in paper.LANGS}, None


#: The config keys :func:`build_task` reads besides the text tower's own options: configs
#: equal on these and on their tower's options have equal tasks (the other keys only change
#: training).
TASK_KEYS = ("profile", "text_tower", "text_preprocess", "image_backbone", "image_weights",
             "device", "train_captions", "emoji_split", "coco_root", "coco_val_images",
             "xtd10_root", "xtd10_sums", "allow_xtd10_leak")


def task_key(cfg) -> tuple:
    """What of ``cfg`` decides its task: the values of :data:`TASK_KEYS`, then the
    ``(key, value)`` pairs of its text tower's options
    (:meth:`repro.towers.text.TextTower.settings`). The options of ``cfg``'s tower only, not
    of every registered tower: ``text_tower`` is a task key, so configs with equal keys have
    the same tower and so the same options, and another tower's options (mBERT's pooling in
    a mUSE config) change nothing of the task."""
    return tuple(getattr(cfg, k) for k in TASK_KEYS) + text_tower(cfg.text_tower).settings(cfg)


def build_task(cfg, with_xtd10: bool = True, tower=None, pool=None) -> Task:
    """The task of ``cfg``'s profile. ``tower``: an already loaded text tower, or a function
    that loads one, to use on feature-cache misses computed in this process only (loading
    mBERT costs time and memory; with every feature cached no tower loads). ``pool``: an
    executor whose workers compute the CPU feature chunks of cache misses (None: this
    process); the features are the same bytes either way."""
    enc = _Encoder(cfg, tower, pool)
    if cfg.profile == "mini":
        task = _mini_task(cfg, enc, with_xtd10, pool)
    else:
        task = _paper_task(cfg, enc, pool)
    return center_on_english(task) if cfg.text_preprocess == "center_en" else task


def image_features(cfg, paths: list[Path], pool=None) -> torch.Tensor:
    """Frozen ``cfg.image_backbone`` features of image files, float32 (n, dim), cached."""
    return torch.from_numpy(backbone_features(cfg.image_backbone, cfg.image_weights, paths,
                                              device=str(resolve_device(cfg.device)), pool=pool))


def _mini_task(cfg, enc: _Encoder, with_xtd10: bool, pool=None) -> Task:
    bench = emoji.load_emoji()
    images = image_features(cfg, emoji.emoji_image_paths(bench), pool)
    scheme = cfg.emoji_split
    train_idx, val_idx, test_idx = (bench.indices(s, scheme) for s in ("train", "val", "test"))
    leaves_out = text_tower(cfg.text_tower).leaves_out
    with_tags = "tags" not in leaves_out
    skip_xtd10 = not with_xtd10 or "xtd10" in leaves_out
    n_langs = len(paper.LANGS)
    enc.sets_total = (3 + n_langs + (n_langs if with_tags else 0) + (n_langs - 1)
                      + (n_langs if not skip_xtd10 and xtd10_dir(cfg) is not None else 0))
    row = {int(i): r for r, i in enumerate(train_idx)}
    texts, owner = bench.english_captions("train", cfg.train_captions, scheme)
    train_text = enc(texts, "en", [row[int(i)] for i in owner], "training captions")
    val_text = enc(bench.names("en", val_idx), "en", np.arange(len(val_idx)), "validation names")
    val_row = {int(i): r for r, i in enumerate(val_idx)}
    groups, group_owner = bench.english_captions("val", "names+keywords", scheme)
    val_groups = enc(groups, "en", [val_row[int(i)] for i in group_owner],
                     "validation captions (diagnostics)")
    test_text = {lang: enc(bench.names(lang, test_idx), lang, np.arange(len(test_idx)),
                           "test names") for lang in paper.LANGS}
    tags, notes = {}, {}
    if not with_tags:
        notes = with_note(notes, "tagging", leaves_out["tags"])
    for lang in paper.LANGS if with_tags else ():
        vocab, tag_lists = bench.tag_vocabulary(lang)
        tags[lang] = (enc(vocab, lang, np.arange(len(vocab)), "tag keywords (Table 3)"),
                      [tag_lists[i] for i in test_idx])
    if with_xtd10 and "xtd10" in leaves_out:
        notes = with_note(notes, "alignment", leaves_out["xtd10"])
    xtd, why_not = ({}, None) if skip_xtd10 else _xtd10_alignment_text(cfg, enc)
    if why_not:
        notes = with_note(notes, "alignment", why_not)
    unlabeled = {lang: enc(bench.names(lang, train_idx), lang, np.arange(len(train_idx)),
                           "training names (language centering)")
                 for lang in paper.LANGS if lang != "en"}
    return Task(profile="mini", text_dim=train_text.feats.shape[1], image_feat_dim=images.shape[1],
                train_images=images[train_idx], train_text=train_text,
                val_images=images[val_idx], val_text=val_text, val_groups=val_groups,
                test_images=images[test_idx], test_text=test_text, tags=tags, xtd10_text=xtd,
                notes=notes, data_sha256={"emoji_asset": bench.sha256}, unlabeled=unlabeled)


def _paper_task(cfg, enc: _Encoder, pool=None) -> Task:
    """COCO 2014 (train/val, English) + XTD10 (test) with cached backbone features."""
    if not cfg.coco_root:
        raise ReproError("the paper profile needs --set coco_root=DIR (annotations/, "
                         "train2014/, val2014/); see docs/paper_profile.md")
    root = Path(cfg.coco_root)
    problem = folder_problem(root)
    if problem:  # before XTD10 is looked for (or downloaded)
        raise ReproError(f"config coco_root={root}: {problem}")
    xroot = xtd10_dir(cfg) or paper.xtd10_root(None)
    x = paper.load_xtd10(xroot, **_xtd10_fixture_args(cfg))
    captions = paper.load_coco_captions(root)
    train, val = paper.coco_splits(captions, x.coco_ids, cfg.coco_val_images, cfg.allow_xtd10_leak)
    split_of = {c.image_id: c.split for c in captions}
    for name, i in zip(x.image_names, x.coco_ids):
        split_of.setdefault(i, "train2014" if "train2014" in name else "val2014")

    def image_set(ids):
        ids = list(dict.fromkeys(ids))
        paths = [paper.coco_image_path(root, split_of[i], i) for i in ids]
        return ids, image_features(cfg, paths, pool)

    train_ids, train_imgs = image_set([c.image_id for c in train])
    val_ids, val_imgs = image_set([c.image_id for c in val])
    test_ids, test_imgs = image_set(list(x.coco_ids))
    trow = {i: r for r, i in enumerate(train_ids)}
    vrow = {i: r for r, i in enumerate(val_ids)}
    enc.sets_total = 2 + len(x.captions)
    train_text = enc([c.caption for c in train], "en", [trow[c.image_id] for c in train],
                     "COCO training captions")
    val_text = enc([c.caption for c in val], "en", [vrow[c.image_id] for c in val],
                   "COCO validation captions")
    test_row = {i: r for r, i in enumerate(test_ids)}
    test_item = [test_row[i] for i in x.coco_ids]
    test_text = {lang: enc(x.captions[lang], lang, test_item, "XTD10 captions")
                 for lang in x.captions}
    notes = with_note({}, "tagging", "tagging not run: the paper profile has no multilingual "
                      "tag ground truth (the emoji benchmark of the mini profile has)")
    if cfg.allow_xtd10_leak:
        notes = with_note(notes, "data", "XTD10 images were kept in training "
                          "(allow_xtd10_leak): numbers inflated")
    return Task(profile="paper", text_dim=train_text.feats.shape[1],
                image_feat_dim=train_imgs.shape[1], train_images=train_imgs,
                train_text=train_text, val_images=val_imgs, val_text=val_text,
                val_groups=val_text, test_images=test_imgs, test_text=test_text, tags={},
                xtd10_text=test_text, notes=notes,
                data_sha256={"xtd10_commit": paper.XTD10_COMMIT})


def _xtd10_fixture_args(cfg) -> dict:
    """load_xtd10 arguments for a test fixture in XTD10's format (``xtd10_sums`` names its own
    SHA256SUMS); the pinned release needs none."""
    if not cfg.xtd10_sums:
        return {}
    path = Path(cfg.xtd10_sums)
    sums = paper.read_sums(path)
    root = Path(cfg.xtd10_root) if cfg.xtd10_root else path.parent
    return {"sums": sums, "n_lines": len(paper.read_lines(root / paper.XTD10_IMAGES))}
