"""The data of the paper: XTD10 (pinned, verified, downloadable) and MSCOCO 2014; language codes,
the cache folder and resumable, checked downloads. The emoji benchmark is :mod:`repro.data.emoji`.

This module is torch-free (images become features in :mod:`repro.towers.backbones`). Every problem with a
file is a :class:`repro.core.errors.ReproError` whose one-line message names the file.

Languages use XTD10's file codes throughout: ``jp`` is Japanese (CLDR calls it ``ja``).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repro.core.errors import ReproError
from repro.core.fileio import atomic_write_bytes, sha256_file

LANGS = ("en", "de", "es", "fr", "it", "jp", "ko", "pl", "ru", "tr", "zh")
CLDR_CODE = {"jp": "ja"}
ASSETS = Path(__file__).parent / "assets"

XTD10_COMMIT = "d77ff16148468c84287f3efcbf602a015c5e4954"
XTD10_URL = ("https://raw.githubusercontent.com/adobe-research/Cross-lingual-Test-Dataset-XTD10/"
             f"{XTD10_COMMIT}/{{path}}")
XTD10_N = 1000


def cache_dir() -> Path:
    """``$XLIR_CACHE``, else ``$XDG_CACHE_HOME/xlir-repro``, else ``~/.cache/xlir-repro``."""
    if os.environ.get("XLIR_CACHE"):
        return Path(os.environ["XLIR_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "xlir-repro"


# ----------------------------------------------------------------------------- downloads

def download(url: str, dest: Path, sha256: str | None = None, progress: bool = True,
             verify=None) -> Path:
    """Fetch ``url`` to ``dest``, resumably, and check it before it is used.

    A partial ``dest.part`` is resumed with an HTTP Range request. A finished file is checked
    against ``sha256`` (or with ``verify(path)`` when no sum is known); an existing ``dest``
    that fails the check is deleted and fetched again, never used; a fresh download that
    fails it is deleted and raises :class:`ReproError`.
    """
    dest = Path(dest)
    if dest.exists():
        if _check(dest, sha256, verify) is None:
            return dest
        dest.unlink()  # corrupt or truncated: fetch again
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        _fetch_to(url, part, progress)
        problem = _check(part, sha256, verify)
        if problem is None:
            os.replace(part, dest)
            return dest
        part.unlink()  # a bad resume: start over once from zero
    raise ReproError(f"{dest}: download from {url} failed its check ({problem})")


def _check(path: Path, sha256: str | None, verify) -> str | None:
    """None when ``path`` is good, else a short description of the problem."""
    if sha256 is not None:
        got = sha256_file(path)
        return None if got == sha256 else f"sha256 {got[:12]}... != expected {sha256[:12]}..."
    if verify is not None:
        return verify(path)
    return None


def _fetch_to(url: str, part: Path, progress: bool) -> None:
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=60)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch
            return
        raise ReproError(f"{url}: HTTP {exc.code} while downloading to {part}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ReproError(f"{url}: cannot download ({exc}); no network? provide the files "
                         "locally (XTD10: --root DIR or XLIR_XTD10_DIR)") from None
    with resp:
        resumed = have and resp.status == 206
        total = resp.headers.get("Content-Length")
        total = int(total) + (have if resumed else 0) if total else None
        bar = _progress(total, have if resumed else 0, part.name, progress)
        with open(part, "ab" if resumed else "wb") as f:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                f.write(chunk)
                bar.update(len(chunk))
        bar.close()


def _progress(total, initial, name, enabled):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=name,
                disable=not enabled, file=sys.stderr)


# ----------------------------------------------------------------------------- XTD10

def read_sums(path: Path) -> dict[str, str]:
    """Relative path -> sha256 from a ``sha256sum``-format file."""
    sums = {}
    for line in read_lines(Path(path)):
        digest, rel = line.split()
        sums[rel] = digest
    return sums


def xtd10_sums() -> dict[str, str]:
    """Relative path -> sha256 of the pinned XTD10 files (shipped with the package)."""
    return read_sums(ASSETS / "xtd10_SHA256SUMS")


def xtd10_caption_path(lang: str) -> str:
    if lang not in LANGS:
        raise ReproError(f"unknown XTD10 language code {lang!r}; expected one of {', '.join(LANGS)}")
    folder = {"de": "MIC", "fr": "MIC", "jp": "STAIR"}.get(lang, "XTD10")
    return f"{folder}/test_1kcaptions_{lang}.txt"


XTD10_IMAGES = "XTD10/test_image_names.txt"


@dataclass(frozen=True)
class Xtd10:
    """The XTD10 test set: line i of every list belongs to image i."""

    root: Path
    image_names: tuple[str, ...]
    captions: dict  # lang -> tuple of 1000 captions

    @property
    def coco_ids(self) -> tuple[int, ...]:
        return tuple(coco_id_from_name(n) for n in self.image_names)


def coco_id_from_name(name: str) -> int:
    """``COCO_train2014_000000061844.jpg`` -> 61844."""
    stem = Path(name).stem
    try:
        return int(stem.rsplit("_", 1)[1])
    except (IndexError, ValueError):
        raise ReproError(f"{name!r} is not a COCO 2014 image file name") from None


def read_lines(path: Path, expected: int | None = None) -> tuple[str, ...]:
    """Lines of a UTF-8 text file, CRLF or LF, each stripped; empty lines are an error."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ReproError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise ReproError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    lines = tuple(line.strip() for line in text.splitlines())
    if expected is not None and len(lines) != expected:
        raise ReproError(f"{path}: {len(lines)} lines, expected {expected}")
    empty = [i + 1 for i, line in enumerate(lines) if not line]
    if empty:
        raise ReproError(f"{path}: empty line {empty[0]} ({len(empty)} empty in all)")
    return lines


def xtd10_root(root: str | Path | None = None, download_missing: bool = True) -> Path:
    """Where XTD10 is read from: ``root``, ``$XLIR_XTD10_DIR``, or the cache (downloaded)."""
    if root is not None:
        return Path(root)
    if os.environ.get("XLIR_XTD10_DIR"):
        return Path(os.environ["XLIR_XTD10_DIR"])
    cached = cache_dir() / f"xtd10-{XTD10_COMMIT[:7]}"
    if download_missing:
        for rel, digest in xtd10_sums().items():
            download(XTD10_URL.format(path=rel), cached / rel, digest, progress=False)
        licence = cached / "LICENSE.md"
        if not licence.exists():
            atomic_write_bytes(licence, (ASSETS / "XTD10_LICENSE.md").read_bytes())
    return cached


def load_xtd10(root: str | Path | None = None, langs=LANGS, sums: dict | None = None,
               n_lines: int = XTD10_N) -> Xtd10:
    """Read and verify XTD10 (checksums and 1000 lines per file) for ``langs``.

    ``sums`` and ``n_lines`` default to the pinned release; a test fixture in XTD10's format
    passes its own.
    """
    base = xtd10_root(root)
    sums = xtd10_sums() if sums is None else sums
    if base.is_file():
        raise ReproError(f"{base}: is a file, not the XTD10 folder")
    if not base.is_dir():
        raise ReproError(f"{base}: XTD10 folder not found")
    rels = [XTD10_IMAGES] + [xtd10_caption_path(lang) for lang in langs]
    # Structure first (count, empty lines) for a specific message, then the pinned checksum.
    lines = {rel: read_lines(base / rel, n_lines) for rel in rels}
    for rel in rels:
        got = sha256_file(base / rel)
        if got != sums[rel]:
            raise ReproError(f"{base / rel}: sha256 {got[:12]}... does not match the pinned "
                             f"{sums[rel][:12]}... (commit {XTD10_COMMIT[:7]})")
    images = lines[XTD10_IMAGES]
    captions = {lang: lines[xtd10_caption_path(lang)] for lang in langs}
    return Xtd10(root=base, image_names=images, captions=captions)


# ----------------------------------------------------------------------------- MSCOCO 2014

COCO_URLS = {
    "train2014.zip": "http://images.cocodataset.org/zips/train2014.zip",
    "val2014.zip": "http://images.cocodataset.org/zips/val2014.zip",
    "annotations_trainval2014.zip":
        "http://images.cocodataset.org/annotations/annotations_trainval2014.zip",
}
COCO_SPLITS = ("train2014", "val2014")
COCO_VAL_IMAGES = 5000
COCO_VAL_SEED = 20201209  # the first paper's arXiv date: a fixed, documented seed


@dataclass(frozen=True)
class CocoCaption:
    image_id: int
    split: str  # "train2014" or "val2014"
    caption: str


def verify_zip(path: Path) -> str | None:
    """None when ``path`` is a complete zip with good CRCs, else the problem."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        return f"not a complete zip ({exc})"
    return None if bad is None else f"member {bad} fails its CRC"


def download_coco(root: Path, progress: bool = True) -> None:
    """Fetch and unpack the three COCO 2014 zips into ``root`` (resumable, verified).

    The zips' sha256 sums are not known to this package offline, so a zip is verified by its
    own CRCs (a truncated or corrupt zip fails), and its sha256 is printed for the record.
    """
    import zipfile

    root.mkdir(parents=True, exist_ok=True)
    for name, url in COCO_URLS.items():
        path = download(url, root / "zips" / name, None, progress, verify=verify_zip)
        print(f"{name}: sha256 {sha256_file(path)}", file=sys.stderr)
        with zipfile.ZipFile(path) as zf:
            zf.extractall(root)


def load_coco_captions(root: Path) -> list[CocoCaption]:
    """All captions of ``root/annotations/captions_{train,val}2014.json``, in file order."""
    out = []
    for split in COCO_SPLITS:
        path = Path(root) / "annotations" / f"captions_{split}.json"
        try:
            blob = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReproError(f"{path}: file not found (run with --download or set --root)") from None
        except json.JSONDecodeError as exc:
            raise ReproError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
        try:
            known = {img["id"] for img in blob["images"]}
            for ann in blob["annotations"]:
                if ann["image_id"] not in known:
                    raise ReproError(f"{path}: caption {ann['id']} names unknown image "
                                     f"{ann['image_id']}")
                text = " ".join(str(ann["caption"]).split())
                if not text:
                    raise ReproError(f"{path}: caption {ann['id']} is empty")
                out.append(CocoCaption(int(ann["image_id"]), split, text))
        except KeyError as exc:
            raise ReproError(f"{path}: missing key {exc} in a COCO captions file") from None
    return out


def coco_image_path(root: Path, split: str, image_id: int) -> Path:
    """``root/<split>/COCO_<split>_<12-digit id>.jpg`` for ``train2014`` or ``val2014``."""
    if split not in COCO_SPLITS:
        raise ReproError(f"unknown COCO split {split!r}; expected train2014 or val2014")
    return Path(root) / split / f"COCO_{split}_{image_id:012d}.jpg"


def coco_val_ids(eligible_ids, n: int = COCO_VAL_IMAGES, seed: int = COCO_VAL_SEED) -> list[int]:
    """The English validation images: a seeded choice of ``n`` from the sorted eligible ids."""
    ids = np.array(sorted(set(int(i) for i in eligible_ids)))
    if n > ids.size:
        raise ReproError(f"asked for {n} COCO validation images, only {ids.size} are eligible")
    chosen = np.random.default_rng(seed).choice(ids.size, size=n, replace=False)
    return sorted(ids[chosen].tolist())


def coco_splits(captions: list[CocoCaption], excluded_ids, n_val: int = COCO_VAL_IMAGES,
                allow_leak: bool = False):
    """(train captions, validation captions): XTD10 images never train unless ``allow_leak``.

    ``excluded_ids`` are the XTD10 image ids. Validation images are chosen among the rest.
    """
    excluded = set() if allow_leak else {int(i) for i in excluded_ids}
    eligible = {c.image_id for c in captions} - {int(i) for i in excluded_ids}
    val = set(coco_val_ids(eligible, n_val))
    train = [c for c in captions if c.image_id not in excluded and c.image_id not in val]
    valid = [c for c in captions if c.image_id in val]
    return train, valid


# ----------------------------------------------------------------------------- verify (CLI)

def verify(dataset: str, root: str | None = None) -> list[str]:
    """Check XTD10 or COCO; return report lines ending in ``OK`` or raise ReproError (the emoji
    benchmark: :func:`repro.data.emoji.verify_emoji`)."""
    if dataset == "xtd10":
        x = load_xtd10(root)
        lines = [f"{lang}: {len(x.captions[lang])} captions" for lang in LANGS]
        n_train = sum(n.startswith("COCO_train2014_") for n in x.image_names)
        lines.append(f"images: {len(x.image_names)} ({n_train} train2014, "
                     f"{len(x.image_names) - n_train} val2014)")
        lines.append(f"xtd10 {x.root}: OK (sha256 and 1000 lines per file, commit "
                     f"{XTD10_COMMIT[:7]})")
        return lines
    if dataset == "coco":
        if root is None:
            raise ReproError("data verify coco needs --root DIR (the folder holding "
                             "annotations/, train2014/ and val2014/)")
        caps = load_coco_captions(Path(root))
        ids = {(c.split, c.image_id) for c in caps}
        missing = [coco_image_path(Path(root), s, i) for s, i in sorted(ids)
                   if not coco_image_path(Path(root), s, i).is_file()]
        if missing:
            raise ReproError(f"{missing[0]}: image file not found ({len(missing)} missing)")
        return [f"captions: {len(caps)}", f"images: {len(ids)}", f"coco {root}: OK"]
    raise ReproError(f"unknown dataset {dataset!r}")
