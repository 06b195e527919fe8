"""Controlled towers and language centering: test-time changes of a frozen tower's
non-English features, before the text head.

The heads are trained on English only, so changing the non-English tower features at test
time changes only the zero-shot side; English features are never touched. Two known
properties of multilingual encoders give towers of graded cross-lingual alignment built from
any real tower:

* **offset**: x + beta * u_lang, a fixed seeded unit vector per language (the
  language-identity component that makes mBERT cluster by language);
* **rotation**: x @ exp(alpha * A_lang), A_lang a fixed seeded skew-symmetric matrix (a space
  aligned only up to an orthogonal map; exp of a skew-symmetric matrix is orthogonal).

**Language centering** (x - mu_lang + mu_en) is a label-free repair of the first: the means
are estimated on unlabeled text that is not the test set.

Shapes: features are float tensors (n, d); every function returns a new tensor.
"""

from __future__ import annotations

import functools
import zlib

import torch

ENGLISH = "en"


def _generator(lang: str, seed: int, what: str) -> torch.Generator:
    """A generator fixed by (what, language, seed): the same perturbation in every run."""
    return torch.Generator().manual_seed(zlib.crc32(f"{what}:{lang}".encode()) + 1_000_003 * seed)


def language_direction(dim: int, lang: str, seed: int = 0) -> torch.Tensor:
    """The fixed unit vector u_lang (float64, (dim,))."""
    u = torch.randn(dim, generator=_generator(lang, seed, "offset"), dtype=torch.float64)
    return u / u.norm()


def skew(dim: int, lang: str, seed: int = 0) -> torch.Tensor:
    """The fixed skew-symmetric A_lang (float64, (dim, dim)), scaled so that its largest
    rotation angle is about 1 radian at alpha = 1 (entries N(0, 1 / (2 dim)))."""
    g = torch.randn(dim, dim, generator=_generator(lang, seed, "rotation"), dtype=torch.float64)
    g = g / (2 * dim) ** 0.5
    return (g - g.T) / 2 ** 0.5


def offset(feats: torch.Tensor, lang: str, beta: float, seed: int = 0) -> torch.Tensor:
    """x + beta * u_lang for a non-English language; English (or beta = 0) unchanged."""
    if lang == ENGLISH or beta == 0:
        return feats.clone()
    u = language_direction(feats.shape[1], lang, seed).to(feats.dtype)
    return feats + beta * u


def rotation(feats: torch.Tensor, lang: str, alpha: float, seed: int = 0) -> torch.Tensor:
    """x @ exp(alpha * A_lang) for a non-English language; English (or alpha = 0) unchanged."""
    if lang == ENGLISH or alpha == 0:
        return feats.clone()
    return (feats.double() @ rotation_matrix(feats.shape[1], lang, alpha, seed)).to(feats.dtype)


@functools.lru_cache(maxsize=64)
def rotation_matrix(dim: int, lang: str, alpha: float, seed: int = 0) -> torch.Tensor:
    """exp(alpha * A_lang), orthogonal (float64, (dim, dim)); computed once per process."""
    return torch.linalg.matrix_exp(alpha * skew(dim, lang, seed))


def mean_feature(feats: torch.Tensor) -> torch.Tensor:
    """The mean feature (d,), accumulated in float64."""
    return feats.double().mean(dim=0)


def center(feats: torch.Tensor, lang: str, means: dict) -> torch.Tensor:
    """Language centering: x - mu_lang + mu_en for a non-English language (``means``: language
    -> (d,) float64 mean of unlabeled non-test text); English unchanged."""
    if lang == ENGLISH:
        return feats.clone()
    shift = means[ENGLISH] - means[lang]
    return (feats.double() + shift).to(feats.dtype)
