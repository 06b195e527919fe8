"""Checkpoints: resuming equals an uninterrupted run, a crash past the last checkpoint,
sparse checkpoints, continuing a finished run, recomputing metrics, corrupt checkpoints and
configs written before a key existed; a finished run is one whose digests.json records every
file as it is, and a changed file is named, never reused or trained over."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from repro.config import make_config
from repro.core.errors import ReproError
from repro.core.fileio import write_digests
from repro.training import trainer
from repro.training.runjob import finished_metrics, reuse_or_train

FAST = ["epochs=3", "batch_size=256"]
STOP_AFTER_1, STOP_AFTER_2 = trainer.Hooks(stop_after_epochs=1), trainer.Hooks(stop_after_epochs=2)


def _run(cfg, out, task, **kw):
    return trainer.train_and_evaluate(cfg, out, task=task, **kw)


def test_resume_equals_uninterrupted(tmp_path, mini_task):
    cfg = make_config("mini", FAST + ["loss=infonce"], seed=2)
    trainer.train(cfg, tmp_path / "r", mini_task, resume=False, hooks=STOP_AFTER_1)
    log1 = (tmp_path / "r/log.jsonl").read_text().splitlines()
    assert len(log1) == 1
    assert not (tmp_path / "r/digests.json").exists()  # unfinished: resumed without digests
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
    with pytest.raises(ReproError, match=re.escape(f"{tmp_path / 'e/metrics.json'}: changed")):
        finished_metrics(cfg, tmp_path / "e")  # the kept, edited file is not the run's
    trainer.evaluate_run(tmp_path / "e", log=said.append, write=True)
    assert (tmp_path / "e/metrics.json").read_bytes() == first
    assert finished_metrics(cfg, tmp_path / "e") is not None  # the file written is recorded


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
    """In a finished run the checkpoint is checked against its digests first (the file is
    named as changed); in an unfinished one (no digests.json yet) it is read, and refused as
    unreadable."""
    cfg = make_config("mini", FAST + ["epochs=1"], seed=0)
    _run(cfg, tmp_path / "r", mini_task)
    metrics = json.loads((tmp_path / "r/metrics.json").read_text())
    assert metrics["on_plateau_at_best_epoch"] in (True, False)
    (tmp_path / "r/checkpoint.pt").write_bytes(np.random.default_rng(0).bytes(1000))
    changed = f"{tmp_path / 'r/checkpoint.pt'}: changed after it was written"
    with pytest.raises(ReproError, match=re.escape(changed)):
        trainer.train(cfg, tmp_path / "r", mini_task, resume=True)
    out = subprocess.run([sys.executable, "-m", "repro", "evaluate", "--run", str(tmp_path / "r")],
                         capture_output=True, text=True)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {changed}")
    (tmp_path / "r/digests.json").unlink()
    with pytest.raises(ReproError, match=r"checkpoint\.pt: unreadable checkpoint.*--fresh"):
        trainer.train(cfg, tmp_path / "r", mini_task, resume=True)


def test_a_config_written_before_a_key_existed_reads_as_its_default(tmp_path, mini_task):
    """A finished run whose config.json lacks a key added later (text_preprocess) is the
    same config as one with that key at its default: reused, and continued, not retrained;
    any other value is another config."""
    cfg = make_config("mini", FAST, seed=6)
    _run(cfg, tmp_path / "r", mini_task)
    old = json.loads(cfg.to_json())
    del old["text_preprocess"]
    (tmp_path / "r/config.json").write_text(json.dumps(old, indent=1, sort_keys=True))
    write_digests(tmp_path / "r", trainer.RUN_FILES)  # as the version before the key wrote it
    trained = lambda *a, **k: pytest.fail("retrained a finished run")  # noqa: E731
    _, how = reuse_or_train(cfg, tmp_path / "r", mini_task, trained)
    assert how == "reused"
    assert trainer.can_continue(json.dumps(old), 3, make_config("mini", ["epochs=5", "batch_size=256"], seed=6))
    centred = make_config("mini", FAST + ["text_preprocess=center_en"], seed=6)
    assert not trainer.can_continue(json.dumps(old), 3, centred)
    calls = []
    reuse_or_train(centred, tmp_path / "r", mini_task, lambda *a, **k: calls.append(a))
    assert len(calls) == 1  # another value of the key is another config: trained




def _flip_a_byte(path) -> None:
    """Flip one bit of the middle byte of ``path`` (its size unchanged)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def _never(*args, **kwargs):
    pytest.fail("trained over a finished run whose files changed")


def test_a_finished_run_is_reused_only_when_every_file_is_the_one_it_wrote(tmp_path, mini_task,
                                                                          capsys):
    """digests.json (written last) records every file of the run; a flipped bit in any of
    them, or one missing, and reuse is a one-line error naming it: not reused, not retrained."""
    from conftest import call_main
    from repro import cli

    cfg = make_config("mini", ["epochs=1", "batch_size=256"], seed=0)
    run = tmp_path / "r"
    _run(cfg, run, mini_task)
    digests = json.loads((run / "digests.json").read_text())["sha256"]
    assert sorted(digests) == sorted(trainer.RUN_FILES)
    assert finished_metrics(cfg, run) is not None
    argv = ["train", "--out", str(run), "--set", "epochs=1", "--set", "batch_size=256"]
    res = call_main(cli.main, argv, capsys)
    assert res.returncode == 0 and f"{run}: a finished run of this config; reusing it" in res.stderr
    for name in trainer.RUN_FILES:
        before = (run / name).read_bytes()
        _flip_a_byte(run / name)
        with pytest.raises(ReproError) as err:
            reuse_or_train(cfg, run, mini_task, _never)
        assert str(err.value) == (f"{run / name}: changed after it was written (its sha256 is "
                                  "not the one the digests.json beside it records)")
        (run / name).write_bytes(before)
    (run / "best_model.pt").rename(tmp_path / "kept.pt")
    with pytest.raises(ReproError, match=re.escape(f"{run / 'best_model.pt'}: missing (the "
                                                   "digests.json beside it records it)")):
        reuse_or_train(cfg, run, mini_task, _never)
    (tmp_path / "kept.pt").rename(run / "best_model.pt")
    _flip_a_byte(run / "checkpoint.pt")
    res = call_main(cli.main, argv, capsys)
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert res.returncode == 2 and errors == [res.stderr.splitlines()[-1]]
    assert errors[0].startswith(f"error: {run / 'checkpoint.pt'}: changed after it was written")
    assert sorted(p.name for p in run.iterdir()) == sorted([*trainer.RUN_FILES, "digests.json"])


def test_a_run_without_its_digests_is_unfinished_and_ends_with_the_same_bytes(tmp_path,
                                                                              mini_task, capsys):
    """A run that ended before its digests.json was written (or an older version's run) is
    not reused: it is resumed from its last-epoch checkpoint, evaluated again and recorded,
    every result file byte-identical."""
    cfg = make_config("mini", ["epochs=1", "batch_size=256"], seed=1)
    run = tmp_path / "r"
    _run(cfg, run, mini_task)
    kept = ("config.json", "log.jsonl", "checkpoint.pt", "best_model.pt", "test_ranks.json",
            "metrics.json")
    before = {name: (run / name).read_bytes() for name in kept}
    (run / "digests.json").unlink()
    assert finished_metrics(cfg, run) is None
    capsys.readouterr()
    _, how = reuse_or_train(cfg, run, mini_task, trainer.train_and_evaluate)
    assert how == "trained"
    assert f"{run}: its checkpoint is of the last epoch (1); evaluating it" in capsys.readouterr().err
    assert {name: (run / name).read_bytes() for name in kept} == before
    assert finished_metrics(cfg, run) is not None


def test_continuing_reads_the_finished_checkpoint_as_recorded_and_unseals_the_folder_first(
        tmp_path, mini_task):
    """The grid continues a finished shorter run from its checkpoint's recorded bytes only;
    continuing a finished run in place deletes its digests.json before the first write, so a
    crash mid-way leaves an unfinished run (resumed), not a finished one of stale files."""
    short = make_config("mini", FAST, seed=5)
    long = make_config("mini", ["epochs=5", "batch_size=256"], seed=5)
    base = tmp_path / "s"
    _run(short, base, mini_task)
    good = (base / "checkpoint.pt").read_bytes()
    _flip_a_byte(base / "checkpoint.pt")
    with pytest.raises(ReproError, match=re.escape(f"{base / 'checkpoint.pt'}: changed after")):
        reuse_or_train(long, tmp_path / "c", mini_task, _never, start_from=base)
    assert not (tmp_path / "c/checkpoint.pt").exists()
    (base / "checkpoint.pt").write_bytes(good)
    trainer.train(long, base, mini_task, resume=True, hooks=trainer.Hooks(stop_after_epochs=4))
    assert not (base / "digests.json").exists()
    assert finished_metrics(short, base) is None and finished_metrics(long, base) is None
