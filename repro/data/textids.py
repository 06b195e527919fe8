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


class TextNumbering:
    """Numbers distinct normalised texts in order of first appearance, across calls: equal
    ids mean equal texts in every list numbered by one instance (no hashing or sorting)."""

    def __init__(self):
        self._seen: dict[str, int] = {}

    def ids(self, texts) -> np.ndarray:
        """(n,) int64 ids of ``texts`` in this numbering."""
        return np.array([self._seen.setdefault(normalize_text(t), len(self._seen))
                         for t in texts], dtype=np.int64)
