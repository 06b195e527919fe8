"""Caption text identity: which captions are the same text, whatever item they describe.

Two captions whose texts are equal after Unicode NFKC, casefolding and collapsing whitespace
are one text: they are never negatives of each other in training (a false negative), and the
text-cluster statistics count such a pair neither as same-item nor as different-item.
NumPy only.
"""

from __future__ import annotations

import unicodedata

import numpy as np


def normalize_text(text: str) -> str:
    """NFKC, casefold, whitespace runs collapsed to one space, ends stripped."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def text_ids(texts) -> np.ndarray:
    """(n,) int64: equal ids exactly for texts that are equal after :func:`normalize_text`.

    Ids number the distinct normalised texts in order of first appearance, so they depend
    only on the list (not on hashing or sorting)."""
    seen: dict[str, int] = {}
    return np.array([seen.setdefault(normalize_text(t), len(seen)) for t in texts],
                    dtype=np.int64)


def shared_text_ids(*lists) -> list[np.ndarray]:
    """Text ids of several lists in one numbering (a text in two lists gets one id)."""
    ids = text_ids([t for texts in lists for t in texts])
    out, start = [], 0
    for texts in lists:
        out.append(ids[start:start + len(texts)])
        start += len(texts)
    return out
