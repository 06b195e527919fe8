"""Feature-cache keys hold everything that changes a feature: each ingredient changed alone is
a miss; towers load only on a miss; features are streamed to disk and renamed."""

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from repro.config import make_config
from repro.towers import backbones, cache, text as text_towers
from repro.training import tasks


def _meta(**sets):
    return tasks.tower_meta(make_config("mini", [f"{k}={v}" for k, v in sets.items()]))


def test_cached_recomputes_exactly_when_the_metadata_or_inputs_change(tmp_path):
    calls = []

    def compute(items):
        calls.append(list(items))
        return np.ones((len(items), 3), dtype=np.float32)

    base = {"tower": "t", "pooling": "mean"}
    cache.cached("k", base, ["a", "b"], compute, tmp_path)
    cache.cached("k", dict(base), ["a", "b"], compute, tmp_path)
    assert len(calls) == 1                                      # same key: a hit
    cache.cached("k", dict(base, pooling="cls"), ["a", "b"], compute, tmp_path)
    cache.cached("k", base, ["a", "c"], compute, tmp_path)
    cache.cached("k", base, ["b", "a"], compute, tmp_path)   # order is part of the key
    assert len(calls) == 4
    assert not list(tmp_path.glob(".*.tmp"))                    # streamed, renamed, nothing left


def test_mbert_key_holds_weights_pooling_length_and_device(tiny_bert, tmp_path, monkeypatch):
    base = _meta(text_tower="mbert", mbert_id=tiny_bert)
    assert base["revision"].startswith("sha256:") and base["max_length"] == text_towers.MBERT_MAX_LENGTH
    assert base["pooling_rule"] == text_towers.MBERT_POOLING_RULES["mean"]
    assert _meta(text_tower="mbert", mbert_id=tiny_bert, mbert_pooling="cls") != base
    assert _meta(text_tower="mbert", mbert_id=tiny_bert, device="cpu")["device"] == "cpu"
    monkeypatch.setattr(text_towers, "MBERT_MAX_LENGTH", 64)
    assert _meta(text_tower="mbert", mbert_id=tiny_bert)["max_length"] == 64
    monkeypatch.undo()
    # other weights in a folder of the same name: another revision
    other = tmp_path / "bert"
    shutil.copytree(tiny_bert, other)
    assert _meta(text_tower="mbert", mbert_id=other)["revision"] == base["revision"]
    weights = next(p for p in other.iterdir() if p.name.startswith("model."))
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 1
    weights.write_bytes(bytes(blob))
    assert _meta(text_tower="mbert", mbert_id=other)["revision"] != base["revision"]


def test_muse_key_holds_weights_hash_and_how_it_computes_not_threads():
    m = _meta()
    assert len(m["weights_sha256"]) == 64 and m["batch"] == 256
    assert m["compute"] == "chunks of 256 texts, each on one thread"
    assert "threads" not in m and _meta(threads=4) == m == _meta(threads=0)


def test_image_key_holds_file_contents_weights_and_transform(tmp_path, monkeypatch):
    monkeypatch.setenv("XLIR_CACHE", str(tmp_path / "cache"))
    paths = []
    for i in range(3):
        p = tmp_path / f"im{i}.bmp"  # uncompressed: other pixels, same size
        Image.new("RGB", (40, 40), (40 * i, 0, 0)).save(p)
        paths.append(p)
    runs = []
    real = backbones.extract

    def counting(*a, **k):
        runs.append(1)
        return real(*a, **k)

    monkeypatch.setattr(backbones, "extract", counting)
    a = backbones.image_features("resnet18", "none", paths)
    backbones.image_features("resnet18", "none", paths)
    assert len(runs) == 1
    # same name, same size, other pixels: a miss
    size = paths[1].stat().st_size
    Image.new("RGB", (40, 40), (0, 200, 0)).save(paths[1])
    assert paths[1].stat().st_size == size
    b = backbones.image_features("resnet18", "none", paths)
    assert len(runs) == 2 and a.shape == b.shape
    assert backbones.weights_id("resnet18", "none") != backbones.weights_id("resnet18", "imagenet")
    assert backbones.weights_id("efficientnet_lite0", "imagenet").startswith("sha256:")
    assert backbones.BACKBONES["resnet18"].transform_id != \
        backbones.BACKBONES["efficientnet_lite0"].transform_id


def test_file_hash_index_rehashes_changed_files_only(tmp_path):
    index = tmp_path / "index.json"
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc")
    first = cache.file_sha256s([p], index)
    assert json.loads(index.read_text())[str(p.resolve())][2] == first[0]
    p.write_bytes(b"abd")
    assert cache.file_sha256s([p], index) != first


def test_the_tower_loads_only_on_a_miss(tiny_bert):
    cfg = make_config("mini", ["text_tower=mbert", f"mbert_id={tiny_bert}"])
    loads = []

    def load():
        loads.append(1)
        return text_towers.MBertTower(str(tiny_bert))

    texts = ["only loaded once", "a red apple on the table"]
    first = tasks._Encoder(cfg, load)(texts, "en", [0, 1])
    assert len(loads) == 1
    again = tasks._Encoder(cfg, load)(texts, "en", [0, 1])
    assert len(loads) == 1                          # every feature cached: no tower loads
    assert np.array_equal(first.feats.numpy(), again.feats.numpy())


def test_reproduce_checks_towers_without_loading_them(tiny_bert):
    from repro.experiments import reproduce

    load, problem = reproduce._tower_loader(make_config("mini", ["text_tower=mbert",
                                                                 f"mbert_id={tiny_bert}"]))
    assert problem is None and callable(load)
    load, problem = reproduce._tower_loader(make_config("mini", ["text_tower=mbert",
                                                                 "mbert_id=no-such/model"]))
    assert load is None and "mBERT weights not available" in problem
    assert Path(str(tiny_bert)).is_dir()
