"""Feature-cache keys hold everything that changes a feature: each ingredient changed alone is
a miss; a tower's declared options reach the feature, task and worker keys; towers load only
on a miss; features are streamed to disk and renamed."""

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repro import config
from repro.config import make_config
from repro.core import numerics
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
    # the key says the length the registered tower truncates at
    cfg = make_config("mini", ["text_tower=mbert", f"mbert_id={tiny_bert}"])
    assert text_towers.make_text_tower(cfg).max_length == base["max_length"]
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


def test_an_entry_without_a_checksum_is_rebuilt_and_said(tmp_path):
    """An entry written before features were verified (no array_sha256) has the same name
    as today's: it is rebuilt, with a warning that says why."""
    calls, said = [], []

    def compute(items):
        calls.append(list(items))
        return np.ones((len(items), 2), dtype=np.float32)

    cache.cached("t", {"tower": "x"}, ["a"], compute, tmp_path)
    (meta,) = tmp_path.glob("t-*.json")
    entry = json.loads(meta.read_text())
    del entry["array_sha256"]
    meta.write_text(json.dumps(entry))
    cache.cached("t", {"tower": "x"}, ["a"], compute, tmp_path, log=said.append)
    assert len(calls) == 2
    assert said[0].endswith("made by an older version (no checksum of its content); rebuilding it")
    assert "array_sha256" in json.loads(meta.read_text())


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


class ZeroTower:
    """A loaded tower whose every feature is zero."""

    dim, weights_id = 2, "zero"

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.zeros((len(texts), self.dim), dtype=np.float32)


#: The feature-cache entry names each tower's key gave before towers declared their options
#: (weights and numerics pinned below): a change of them would orphan every existing cache.
KNOWN_ENTRIES = {
    ("muse", ()): "text-muse-edf259dd589310281106",
    ("e5", ()): "text-e5-e786a515441fcd08b421",
    ("mbert", ()): "text-mbert-0464809bf43d8c81b239",
    ("mbert", ("mbert_pooling=cls",)): "text-mbert-5bf59b12d462bc134fe1",
    ("mbert", ("mbert_download=true",)): "text-mbert-0464809bf43d8c81b239",
}


@pytest.mark.parametrize("tower, sets", KNOWN_ENTRIES)
def test_existing_towers_keep_their_cache_entry_names(tower, sets, tmp_path, monkeypatch):
    """Each registered tower's entry for fixed weights, numerics and texts has the name it
    had (mbert_download is no part of it): existing caches are reused."""
    monkeypatch.setenv("XLIR_CACHE", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # mbert_id "bert": a local folder of fixed files
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text("{}")
    (tmp_path / "bert" / "model.safetensors").write_bytes(b"weights")
    monkeypatch.setattr(numerics, "cache_key", lambda: "pinned-AVX2")
    monkeypatch.setattr(text_towers, "muse_weights_sha256", lambda: "m" * 64)
    monkeypatch.setattr(text_towers, "version", lambda package: "1.0")
    monkeypatch.setattr(text_towers, "e5_files", lambda: [])
    cfg = make_config("mini", [f"text_tower={tower}", "mbert_id=bert", "device=cpu", *sets])
    tasks._Encoder(cfg, tower=lambda: ZeroTower())(["a", "b"], "en", [0, 1])
    (entry,) = (tmp_path / "features").glob("text-*.npy")
    assert entry.stem == KNOWN_ENTRIES[tower, sets]


class SaltedTower:
    """Each text's feature is drawn from a generator seeded by the sha256 of a salt and the
    text: another salt, other features. ``encoded`` gets the texts of each encode call."""

    dim, weights_id = 8, "salted-1"

    def __init__(self, salt: str, encoded: list):
        self.salt, self.encoded = salt, encoded

    def encode(self, texts: list[str]) -> np.ndarray:
        self.encoded.append(list(texts))
        digests = [hashlib.sha256(f"{self.salt} {t}".encode()).hexdigest() for t in texts]
        rows = [np.random.default_rng(int(d[:8], 16)).standard_normal(self.dim) for d in digests]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)


def _register_salted(monkeypatch, options: dict) -> list:
    """The tower "salted", whose features depend on a config key of its own, ``hash_salt``
    (added to the config for the test, as a new tower's option would be), registered with
    ``options``; returns the list each encode call appends its texts to."""
    salted_config = dataclasses.make_dataclass(
        "SaltedConfig", [("hash_salt", str, "a")], bases=(config.Config,), frozen=True)
    monkeypatch.setattr(config, "Config", salted_config)
    encoded = []
    monkeypatch.setitem(text_towers.TEXT_TOWERS, "salted", text_towers.TextTower(
        "salted", "Salted", SaltedTower.dim, build=lambda cfg: SaltedTower(cfg.hash_salt, encoded),
        cache_meta=lambda cfg, load=None: {"weights": SaltedTower.weights_id},
        unavailable=lambda cfg: None, options=options))
    return encoded


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
def test_a_towers_own_option_rebuilds_its_features_and_task(declared, tmp_path, monkeypatch):
    """Another value of a tower's own config key is a feature-cache miss (the tower encodes
    again), another task and another tower loaded in a worker process, when the tower
    declares the key as its option; undeclared (the control), the features, the task and
    the loaded tower of the first value would be reused."""
    monkeypatch.setenv("XLIR_CACHE", str(tmp_path))
    monkeypatch.setattr(tasks, "_PROCESS_TOWERS", {})
    encoded = _register_salted(monkeypatch, {"hash_salt": "salt"} if declared else {})
    a, b = (make_config("mini", ["text_tower=salted", f"hash_salt={s}"]) for s in "ab")
    texts = ["a red apple", "eine rote katze"]
    first = tasks.text_features_of(a, texts, "en")
    assert tasks.text_features_of(a, texts, "en").equal(first) and len(encoded) == 1  # a hit
    other = tasks.text_features_of(b, texts, "en")
    assert (len(encoded) == 2) == declared                     # a miss: encoded again
    assert (not other.equal(first)) == declared                # with the other salt
    assert (tasks.tower_meta(b).get("salt") == "b") == declared
    assert (tasks.task_key(a) != tasks.task_key(b)) == declared
    in_worker = [tasks.encode_chunk(cfg, texts) for cfg in (a, b)]
    assert (not np.array_equal(*in_worker)) == declared         # its own tower per salt
