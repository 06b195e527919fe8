"""Checkpoints: resuming equals an uninterrupted run, a crash past the last checkpoint,
sparse checkpoints, continuing a finished run, recomputing metrics, corrupt checkpoints and
configs written before a key existed."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from repro.config import make_config
from repro.core.errors import ReproError
from repro.training import trainer
from repro.training.runjob import reuse_or_train

FAST = ["epochs=3", "batch_size=256"]
STOP_AFTER_1, STOP_AFTER_2 = trainer.Hooks(stop_after_epochs=1), trainer.Hooks(stop_after_epochs=2)


def _run(cfg, out, task, **kw):
    return trainer.train_and_evaluate(cfg, out, task=task, **kw)


def test_resume_equals_uninterrupted(tmp_path, mini_task):
    cfg = make_config("mini", FAST + ["loss=infonce"], seed=2)
    trainer.train(cfg, tmp_path / "r", mini_task, resume=False, hooks=STOP_AFTER_1)
    log1 = (tmp_path / "r/log.jsonl").read_text().splitlines()
    assert len(log1) == 1
    _run(cfg, tmp_path / "r", mini_task, resume=True)
    _run(cfg, tmp_path / "u", mini_task, resume=False)
    assert (tmp_path / "r/metrics.json").read_bytes() == (tmp_path / "u/metrics.json").read_bytes()
    ra = torch.load(tmp_path / "r/checkpoint.pt", weights_only=False)["model"]
    ua = torch.load(tmp_path / "u/checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(ra[k], ua[k]) for k in ra)
    # log: same numbers except wall-clock seconds
    strip = lambda lines: [{k: v for k, v in json.loads(l).items() if k != "seconds"} for l in lines]
    assert strip((tmp_path / "r/log.jsonl").read_text().splitlines()) == strip(
        (tmp_path / "u/log.jsonl").read_text().splitlines())


def test_resume_after_a_crash_past_the_last_checkpoint(tmp_path, mini_task):
    """Checkpoints are sparse: epochs run after the last one are redone, the log too."""
    import shutil

    cfg = make_config("mini", FAST, seed=3)
    run = tmp_path / "c"
    trainer.train(cfg, run, mini_task, resume=False, hooks=STOP_AFTER_1)
    shutil.copy(run / "checkpoint.pt", tmp_path / "epoch1.pt")
    trainer.train(cfg, run, mini_task, resume=True, hooks=STOP_AFTER_2)
    assert len((run / "log.jsonl").read_text().splitlines()) == 2
    shutil.copy(tmp_path / "epoch1.pt", run / "checkpoint.pt")  # the crash lost epoch 2's
    _run(cfg, run, mini_task, resume=True)
    _run(cfg, tmp_path / "u", mini_task, resume=False)
    assert (run / "metrics.json").read_bytes() == (tmp_path / "u/metrics.json").read_bytes()
    assert [json.loads(l)["epoch"] for l in (run / "log.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_sparse_checkpoints_change_nothing(tmp_path, mini_task, monkeypatch):
    cfg = make_config("mini", FAST, seed=4)
    monkeypatch.setattr(trainer, "CHECKPOINT_SECONDS", 0)  # a checkpoint after every epoch
    trainer.train(cfg, tmp_path / "every", mini_task, resume=False)
    monkeypatch.setattr(trainer, "CHECKPOINT_SECONDS", 1e9)  # one at the end
    trainer.train(cfg, tmp_path / "end", mini_task, resume=False)
    a = torch.load(tmp_path / "every/checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "end/checkpoint.pt", weights_only=False)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_evaluate_run_recomputes_metrics(tmp_path, mini_task, monkeypatch):
    cfg = make_config("mini", FAST, seed=0)
    _run(cfg, tmp_path / "e", mini_task)
    first = (tmp_path / "e/metrics.json").read_bytes()
    (tmp_path / "e/metrics.json").unlink()
    monkeypatch.setattr(trainer, "build_task", lambda c: mini_task)
    trainer.evaluate_run(tmp_path / "e")
    assert (tmp_path / "e/metrics.json").read_bytes() == first
    # a metrics.json that differs is kept, and the values that differ are named; --write
    # replaces it
    doctored = json.loads(first)
    key, value = next(iter(doctored["summary"].items()))
    doctored["summary"][key] = 99.9
    (tmp_path / "e/metrics.json").write_text(json.dumps(doctored))
    said = []
    trainer.evaluate_run(tmp_path / "e", log=said.append)
    assert said == [f"{tmp_path / 'e/metrics.json'}: recomputed, differs from the saved file in "
                    f"{key} 99.9 -> {value} (other data, settings or machine); kept (--write "
                    "replaces it)"]
    assert json.loads((tmp_path / "e/metrics.json").read_text()) == doctored
    trainer.evaluate_run(tmp_path / "e", log=said.append, write=True)
    assert (tmp_path / "e/metrics.json").read_bytes() == first


def test_continuing_a_finished_run_equals_training_longer(tmp_path, mini_task):
    import shutil

    short = make_config("mini", FAST, seed=5)
    long = make_config("mini", ["epochs=5", "batch_size=256"], seed=5)
    _run(short, tmp_path / "s", mini_task)
    (tmp_path / "c").mkdir()
    shutil.copy(tmp_path / "s/checkpoint.pt", tmp_path / "c/checkpoint.pt")
    _run(long, tmp_path / "c", mini_task, resume=True)
    _run(long, tmp_path / "l", mini_task, resume=False)
    assert (tmp_path / "c/metrics.json").read_bytes() == (tmp_path / "l/metrics.json").read_bytes()
    assert trainer.can_continue(short.to_json(), 3, long)
    assert not trainer.can_continue(long.to_json(), 5, short)  # past the end
    other = make_config("mini", ["epochs=5", "batch_size=256", "lr=0.01"], seed=5)
    assert not trainer.can_continue(short.to_json(), 3, other)
    with pytest.raises(ReproError, match="checkpoint of another config"):
        trainer.train(other, tmp_path / "c", mini_task, resume=True)


def test_corrupt_checkpoint_is_a_one_line_error(tmp_path, mini_task):
    cfg = make_config("mini", FAST + ["epochs=1"], seed=0)
    _run(cfg, tmp_path / "r", mini_task)
    metrics = json.loads((tmp_path / "r/metrics.json").read_text())
    assert metrics["on_plateau_at_best_epoch"] in (True, False)
    (tmp_path / "r/checkpoint.pt").write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ReproError, match=r"checkpoint\.pt: unreadable checkpoint.*--fresh"):
        trainer.train(cfg, tmp_path / "r", mini_task, resume=True)
    out = subprocess.run([sys.executable, "-m", "repro", "evaluate", "--run", str(tmp_path / "r")],
                         capture_output=True, text=True)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "unreadable checkpoint" in lines[0]


def test_a_config_written_before_a_key_existed_reads_as_its_default(tmp_path, mini_task):
    """A finished run whose config.json lacks a key added later (text_preprocess) is the
    same config as one with that key at its default: reused, and continued, not retrained;
    any other value is another config."""
    cfg = make_config("mini", FAST, seed=6)
    _run(cfg, tmp_path / "r", mini_task)
    old = json.loads(cfg.to_json())
    del old["text_preprocess"]
    (tmp_path / "r/config.json").write_text(json.dumps(old, indent=1, sort_keys=True))
    trained = lambda *a, **k: pytest.fail("retrained a finished run")  # noqa: E731
    _, how = reuse_or_train(cfg, tmp_path / "r", mini_task, trained)
    assert how == "reused"
    assert trainer.can_continue(json.dumps(old), 3, make_config("mini", ["epochs=5", "batch_size=256"], seed=6))
    centred = make_config("mini", FAST + ["text_preprocess=center_en"], seed=6)
    assert not trainer.can_continue(json.dumps(old), 3, centred)
    calls = []
    reuse_or_train(centred, tmp_path / "r", mini_task, lambda *a, **k: calls.append(a))
    assert len(calls) == 1  # another value of the key is another config: trained


