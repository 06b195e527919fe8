"""Bad input and faults as a new user meets them: each a one-line error (exit code 2) before any
work starts, or the documented behaviour; a diverged run stops at its step and writes no
metrics; an interrupted run says what it kept and resumes to the same bits."""

import dataclasses
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from repro import cli
from repro.config import make_config
from repro.core.errors import ReproError
from repro.training import trainer

from conftest import call_main

ROOT = Path(__file__).resolve().parents[1]


def _error_lines(stderr: str) -> list[str]:
    """The error lines of a command's stderr, which must end with them (a ``train`` says
    what it is about to do first)."""
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert lines[-len(errors):] == errors and "Traceback" not in stderr, stderr
    return errors


@pytest.mark.parametrize("setting,rule", [
    ("lambda_tt=-1", "lambda_tt=-1.0: must be finite and >= 0 (0 is PATR)"),
    ("margin=nan", "margin=nan: must be between 0 and 2 (a cosine distance)"),
    ("margin_tt=2.5", "margin_tt=2.5: must be between 0 and 2 (a cosine distance)"),
    ("vsepp_margin=-0.1", "vsepp_margin=-0.1: must be between 0 and 2 (a difference of cosines)"),
    ("lr=inf", "lr=inf: must be finite and > 0"),
    ("lr=0", "lr=0.0: must be finite and > 0"),
    ("tau=0", "tau=0.0: must be finite and > 0"),
    ("weight_decay=-1e-4", "weight_decay=-0.0001: must be finite and >= 0"),
    ("threads=-1", "threads=-1: must be >= 1, or 0 for all cores"),
])
def test_values_that_cannot_train_are_refused_before_any_work(setting, rule, tmp_path, capsys):
    out = tmp_path / "run"
    res = call_main(cli.main, ["train", "--out", str(out), "--set", setting], capsys)
    assert res.returncode == 2 and res.stdout == ""
    assert _error_lines(res.stderr) == [f"error: config {rule}"]
    assert not out.exists()  # nothing started


@pytest.mark.parametrize("where,why", [
    ("a_file", "exists and is not a folder"),
    ("a_file/under", "{tmp}/a_file is a file, not a folder"),
    ("locked/run", "{tmp}/locked is not writable (Permission denied)"),
    ("/sys/repro-run", "/sys is not writable (Permission denied)"),
])
def test_an_output_path_that_cannot_be_written_is_refused_first(where, why, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "locked").mkdir(mode=0o500)
    if where.startswith("locked") and os.access(tmp_path / "locked", os.W_OK):
        pytest.skip("this user (root) writes into read-only folders: nothing to refuse")
    for argv in (["train", "--out"], ["reproduce", "--no-notebooks", "--out"]):
        res = call_main(cli.main, [*argv, str(tmp_path / where)], capsys)  # /sys: absolute
        assert res.returncode == 2 and res.stdout == "", argv
        assert _error_lines(res.stderr) == [
            f"error: --out {tmp_path / where}: {why.format(tmp=tmp_path)}"]


def test_range_edges_are_allowed():
    cfg = make_config("mini", ["lambda_tt=0", "margin=2", "margin_tt=0", "vsepp_margin=0",
                               "weight_decay=0", "threads=0"])
    assert (cfg.lambda_tt, cfg.margin, cfg.threads) == (0.0, 2.0, 0)


def test_an_unknown_key_names_the_close_ones():
    with pytest.raises(ReproError, match=r"unknown config key 'lamda_tt'; did you mean lambda_tt\?$"):
        make_config("mini", ["lamda_tt=1"])
    with pytest.raises(ReproError, match=r"unknown config key 'zzz'; the keys are the fields of"):
        make_config("mini", ["zzz=1"])


def test_a_config_json_with_nan_is_refused():
    from repro.config import config_from_json

    text = make_config("mini").to_json().replace('"margin": 0.5', '"margin": NaN')
    with pytest.raises(ReproError, match="margin=nan: must be between 0 and 2"):
        config_from_json(text)


def test_evaluate_refuses_run_with_scores(tmp_path, capsys):
    res = call_main(cli.main, ["evaluate", "--run", str(tmp_path), "--scores", "s.npy"], capsys)
    assert res.returncode == 2 and len(_error_lines(res.stderr)) == 1
    assert "give one or the other" in res.stderr


@pytest.mark.parametrize("groups,option,why", [
    ([0, 1, 2, 5], "--image-of-caption", "image_of_caption has index 5 out of range [0, 3)"),
    ([0, 1, 2], "--image-of-caption", "image_of_caption has shape (3,) but 4 captions need "
                                      "shape (4,)"),
    ("text", "--image-of-caption", "not a .npy file (no NumPy header"),
])
def test_evaluate_blames_the_file_that_is_wrong(groups, option, why, tmp_path, capsys):
    import numpy as np

    scores, g = tmp_path / "scores.npy", tmp_path / "groups.npy"
    np.save(scores, np.arange(12, dtype=float).reshape(4, 3))
    if groups == "text":  # a text file renamed .npy: not "pickled data"
        g.write_text("0\n1\n2\n1\n")
    else:
        np.save(g, np.array(groups))
    res = call_main(cli.main, ["evaluate", "--scores", str(scores), "--image-of-caption",
                               str(g)], capsys)
    assert res.returncode == 2
    [line] = _error_lines(res.stderr)
    assert line.startswith(f"error: {option} {g}: {why}"), line
    if groups != "text":  # the shapes come from both files
        assert line.endswith(f"(--scores {scores} has shape (4, 3))"), line


def test_a_diverged_run_stops_at_its_step_and_writes_no_metrics(tmp_path, mini_task):
    """A NaN feature reaches the loss in the first batch that holds it: the run stops there."""
    feats = mini_task.train_text.feats.clone()
    feats[:] = math.nan
    task = dataclasses.replace(mini_task,
                               train_text=dataclasses.replace(mini_task.train_text, feats=feats))
    cfg = make_config("mini", ["epochs=3", "batch_size=256"])
    with pytest.raises(ReproError) as err:
        trainer.train_and_evaluate(cfg, tmp_path / "r", task=task)
    n = mini_task.train_text.feats.shape[0] // 256
    assert str(err.value) == (
        f"training diverged: loss nan at epoch 1, batch 1 of {n} (M3, loss=patr, lr=0.001, "
        "weight_decay=0.0001, margin=0.5, margin_tt=0.5, lambda_tt=1.0, negative=hardest, "
        "seed 0); no metrics written")
    assert not (tmp_path / "r/metrics.json").exists()
    assert torch.isfinite(mini_task.train_text.feats).all()  # the shared task is untouched


def _lines(path: Path) -> int:
    try:
        return len(path.read_text().splitlines())
    except OSError:
        return 0


def test_an_interrupted_run_says_what_it_kept_and_resumes_to_the_same_bits(tmp_path, mini_features):
    """A real SIGINT in the middle of a ``train`` subprocess, past its epoch-10 checkpoint."""
    sets = ["--set", "epochs=80", "--set", "batch_size=256"]
    out = tmp_path / "interrupted"
    argv = [sys.executable, "-m", "repro", "train", "--out", str(out), *sets]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while _lines(out / "log.jsonl") < 12 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert err.splitlines()[-1] == (f"interrupted: the run's last checkpoint is in {out} "
                                    "(written every few epochs); the same command resumes "
                                    "from it and ends with the same bits")
    assert "Traceback" not in err and not (out / "metrics.json").exists()

    again = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{out}: resuming from the checkpoint of epoch " in again.stderr
    whole = tmp_path / "whole"
    trainer.train_and_evaluate(make_config("mini", ["epochs=80", "batch_size=256"]), whole)
    assert (out / "metrics.json").read_bytes() == (whole / "metrics.json").read_bytes()

    # a rerun into the finished folder says it reuses it, and trains nothing
    third = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0
    assert f"{out}: a finished run of this config; reusing it" in third.stderr
    assert (out / "metrics.json").read_bytes() == (whole / "metrics.json").read_bytes()


def _tree(root: Path) -> dict:
    """Every path under ``root`` with its bytes (None for a folder): what a command wrote."""
    return {p: (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("seeds,why", [
    (["0", "0"], "--seeds 0 0: seed 0 given more than once; the seeds are a set (a run paired "
                 "with itself has no spread and would give p = 0)"),
    (["2", "0", "1", "2", "1"], "--seeds 2 0 1 2 1: seed 1, 2 given more than once;"),
    (["0", "-1"], "--seeds 0 -1: config seed=-1: must be between 0 and 2**32 - 1"),
    (["4294967296"], "--seeds 4294967296: config seed=4294967296: must be between 0 and"),
])
def test_the_seeds_of_a_grid_are_a_set_checked_before_any_work(seeds, why, tmp_path,
                                                               monkeypatch, capsys):
    """``reproduce --seeds 0 0`` would pair a run with itself (std 0, p = 0, a verdict from one
    run): refused before --out is even looked at, nothing written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("x")
    before = _tree(tmp_path)
    res = call_main(cli.main, ["reproduce", "--no-notebooks", "--seeds", *seeds,
                               "--out", "a_file", "--runs", "runs"], capsys)
    assert res.returncode == 2 and res.stdout == ""
    [line] = _error_lines(res.stderr)
    assert line.startswith(f"error: {why}"), line
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("seeds,why", [
    ((), "--seeds: no seed given; give one or more distinct seeds"),
    ((3, 3), "--seeds 3 3: seed 3 given more than once"),
    ((0, -2), "--seeds 0 -2: config seed=-2: must be between"),
    ((0, 1.5), "--seeds 0 1.5: seed 1.5 is not an integer"),
])
def test_run_grid_refuses_bad_seeds_before_any_work(seeds, why, tmp_path):
    """An empty grid cannot come from the CLI (nargs="+"), but from ``run_grid(seeds=())``."""
    from repro.experiments.reproduce import run_grid

    said = []
    with pytest.raises(ReproError) as err:
        run_grid("mini", tmp_path / "runs", seeds=seeds, towers=("muse",), log=said.append)
    assert str(err.value).startswith(why), str(err.value)
    assert said == [] and not any(tmp_path.iterdir())  # nothing said, nothing written


def test_one_seed_is_a_grid(tmp_path):
    from repro.config import check_seeds

    assert check_seeds([7]) == (7,) and check_seeds((2, 0, 1)) == (2, 0, 1)  # order kept


def _finished_run(out: Path, metrics: bytes) -> None:
    """A run folder of ``train``'s default config whose metrics.json holds ``metrics``."""
    out.mkdir()
    (out / "config.json").write_text(make_config("mini", seed=0).to_json())
    (out / "metrics.json").write_bytes(metrics)


@pytest.mark.parametrize("metrics,why", [
    (b'{"metrics_version": 3, "prof', "JSONDecodeError: Unterminated string starting at: "
                                       "line 1 column 24 (char 23); cut or edited?)"),
    (b"", "JSONDecodeError: Expecting value: line 1 column 1 (char 0); cut or edited?)"),
    (b"\xff\xfe{}", "UnicodeDecodeError: "),
    (b"[1, 2]", "not a run result (a JSON object is expected)"),
])
def test_a_cut_metrics_json_in_a_finished_run_is_named(metrics, why, tmp_path, capsys):
    """``train`` into a folder whose config matches and whose metrics.json is cut: one line
    naming the file, nothing trained or written (it was a JSONDecodeError traceback)."""
    out = tmp_path / "run"
    _finished_run(out, metrics)
    before = _tree(tmp_path)
    res = call_main(cli.main, ["train", "--out", str(out)], capsys)
    assert res.returncode == 2 and res.stdout == ""
    [line] = _error_lines(res.stderr)
    reason = why if why.startswith("not a") else f"unreadable run result ({why}"
    assert line.startswith(f"error: {out / 'metrics.json'}: {reason}"), line
    assert _tree(tmp_path) == before


def test_a_cut_or_edited_digests_json_is_named(tmp_path):
    """A folder's digests.json cut, or naming a path outside the folder: one line naming it,
    and none of its files is read as checked."""
    from repro.core.fileio import check_digests, verified_bytes, write_digests

    (tmp_path / "a.txt").write_text("a")
    write_digests(tmp_path, ["a.txt"])
    assert verified_bytes(tmp_path, "a.txt") == b"a"
    record = tmp_path / "digests.json"
    record.write_bytes(record.read_bytes()[:20])
    with pytest.raises(ReproError) as err:
        check_digests(tmp_path)
    assert str(err.value).startswith(f"{record}: unreadable (JSONDecodeError: ")
    assert str(err.value).endswith("; cut or edited?)")
    record.write_text('{"sha256": {"../a.txt": "' + "0" * 64 + '"}}')
    with pytest.raises(ReproError) as err:
        verified_bytes(tmp_path, "a.txt")
    assert str(err.value) == (f"{record}: not a digests file (file name -> sha256 of 64 hex "
                              "digits expected)")


def test_a_cut_metrics_json_stops_reproduce_before_any_job(tmp_path):
    """The grid reads every run folder of a phase before it sends any job: a cut
    metrics.json is a one-line error naming it, and no run starts (the worker's own
    reuse_or_train refuses it too)."""
    from repro import design
    from repro.experiments import reproduce
    from repro.training.runjob import reuse_or_train

    cfg = make_config("mini", seed=0)
    unfinished, cut = tmp_path / "unfinished", tmp_path / "cut"
    _finished_run(cut, b'{"metrics_version": 3, "prof')
    arm = design.ARMS["PATR"]
    phase = [(reproduce.RunKey("muse", arm, 0), cfg, unfinished, None),
             (reproduce.RunKey("muse", arm, 1), cfg, cut, None)]

    class NoPool:
        def submit(self, *args):
            raise AssertionError("a job was sent before the cut metrics.json was found")

    grid = reproduce.GridResults("mini", "test", (0, 1))
    with pytest.raises(ReproError, match=f"^{cut / 'metrics.json'}: unreadable run result "
                                         r"\(JSONDecodeError: "):
        reproduce._run_phase(grid, phase, False, NoPool(), print)
    assert grid.results == {} and not unfinished.exists()

    def train(*args, **kwargs):
        raise AssertionError("trained over a cut metrics.json")

    with pytest.raises(ReproError, match=f"^{cut / 'metrics.json'}: unreadable run result"):
        reuse_or_train(cfg, cut, None, train)


@pytest.mark.parametrize("argv,why", [
    (["--vocab", "{tmp}/tags"], "--vocab {tmp}/tags: is a folder, expected a file (one tag a "
                                "line, UTF-8)"),
    (["--lang", ",,"], "--lang ,,: no language in it; give one or more codes, comma-separated "
                       "(e.g. --lang pl,ja), or leave it out for en"),
    (["--lang", " , "], "--lang  , : no language in it;"),
    (["--lang", ""], "--lang : no language in it;"),
    (["--lang", "pl,,xx"], "--lang xx: unknown language; expected one of"),
    (["--vocab", "{tmp}/long.txt"], "--vocab {tmp}/long.txt: line 2: 1,001 characters, over "
                                    "the limit of 1,000 (a query is a phrase;"),
])
def test_tag_options_are_checked_before_the_model_loads(argv, why, tmp_path, capsys):
    """``tag --vocab DIR`` was an IsADirectoryError traceback and ``tag --lang ,,`` silently
    tagged in English: each is a one-line error naming the option, before the model is
    looked for (the --run folder does not exist) and with nothing written."""
    (tmp_path / "tags").mkdir()
    (tmp_path / "long.txt").write_text("kot\n" + "a" * 1001 + "\npies\n", encoding="utf-8")
    before = _tree(tmp_path)
    argv = [a.format(tmp=tmp_path) for a in argv]
    res = call_main(cli.main, ["tag", "--run", str(tmp_path / "no-run"),
                               str(tmp_path / "img.png"), *argv], capsys)
    assert res.returncode == 2 and res.stdout == ""
    [line] = _error_lines(res.stderr)
    assert line.startswith(f"error: {why.format(tmp=tmp_path)}"), line
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("query,why", [
    ("x" * 10_000, "query: 10,000 characters, over the limit of 1,000 (a query is a phrase; "
                   "the text towers read short texts)"),
    ("un chat " * 126, "query: 1,008 characters, over the limit of 1,000 (a query is a "
                       "phrase; the text towers read short texts)"),
    ("  ", "query: empty text; give a non-empty query"),
])
def test_a_query_longer_than_the_towers_read_is_refused(query, why, tmp_path, capsys):
    """A 10,000-character query was embedded silently (mBERT reads 128 tokens of it); now
    refused with the limit, before the model is looked for."""
    res = call_main(cli.main, ["search", query, "--run", str(tmp_path / "no-run")], capsys)
    assert res.returncode == 2 and res.stdout == ""
    assert _error_lines(res.stderr) == [f"error: {why}"]
    assert not any(tmp_path.iterdir())


def test_the_query_limit_is_inclusive_and_also_guards_the_api():
    from repro.app import search

    assert search.MAX_QUERY_CHARS == 1000
    assert search.check_query("ü" * 1000) == "ü" * 1000
    with pytest.raises(ReproError, match="^query: 1,001 characters, over the limit of 1,000"):
        search.embed_queries(None, ["kot", "k" * 1001], "pl")  # before the model is used
    with pytest.raises(ReproError, match="^--lang : unknown language"):
        search.check_lang("")
