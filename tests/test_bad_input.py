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


def _ctrl_c_as_on_a_terminal() -> None:
    """In the child, before it runs: Ctrl-C at its default, as a terminal starts a command.
    A test run started in the background of a shell (``nohup ... &``) inherits SIGINT
    ignored, and Python keeps ignoring it, so the signal these tests send would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, preexec_fn=_ctrl_c_as_on_a_terminal,
                            stdout=subprocess.PIPE,
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


@pytest.mark.parametrize("lang", ["", ",,", " , "])
def test_an_empty_language_is_refused_by_search_and_tag(lang, tmp_path, capsys):
    for argv in (["search", "cat"], ["tag", str(tmp_path / "img.png")]):
        res = call_main(cli.main, [*argv, "--run", str(tmp_path / "no-run"), "--lang", lang],
                        capsys)
        assert res.returncode == 2 and res.stdout == ""
        [line] = _error_lines(res.stderr)
        assert line.startswith(f"error: --lang {lang}"), line


def test_a_query_the_tower_reads_in_part_is_embedded_with_a_notice(tiny_bert, capsys):
    """mBERT reads the first 128 tokens of a text: a query longer than that (but under the
    1,000 characters refused) is embedded with a notice saying how much is left out; one it
    reads whole, and any query of a tower that reads whole texts, without a word."""
    from repro.app import search
    from repro.app.export import Loaded
    from repro.model.encoder import DualEncoder
    from repro.towers.text import make_text_tower

    cfg = make_config("mini", ["text_tower=mbert", f"mbert_id={tiny_bert}"])
    m = Loaded(cfg, DualEncoder(cfg, 32, 8).eval(), None, tiny_bert, {})
    long_query = "rote katze " * 80
    n = len(make_text_tower(cfg).tokenizer(long_query)["input_ids"])
    capsys.readouterr()
    assert search.embed_queries(m, [long_query, "rote katze"], "de").shape[0] == 2
    notices = [line for line in capsys.readouterr().err.splitlines() if "notice" in line]
    assert n > 128 and notices == [f"notice: query: {n} tokens; the mbert tower reads the "
                                   f"first 128, the last {n - 128} are left out"]

    class WholeTexts:
        def encode(self, texts):
            raise AssertionError("not called")

    search.say_left_out(WholeTexts(), "muse", [long_query])
    assert capsys.readouterr().err == ""


def _bad_paths(tmp: Path) -> None:
    """A file, folders (one empty, one with an image over PIL's pixel limit), a score matrix,
    run folders and exports whose files are broken, each in its own way."""
    import json

    import numpy as np
    from PIL import Image

    from repro.app.export import FORMAT
    from repro.core.fileio import write_digests

    (tmp / "file.txt").write_text("x")
    (tmp / "folder").mkdir()
    (tmp / "empty").mkdir()
    (tmp / "bomb").mkdir()
    Image.new("RGB", (64, 64)).save(tmp / "bomb" / "big.png")
    np.save(tmp / "scores.npy", np.zeros((2, 2)))
    cfg = make_config("mini").to_json()
    nan = cfg.replace('"margin": 0.5', '"margin": NaN')
    runs = {"run_badcfg": ("{", "{}"), "run_nancfg": (nan, "{}"), "run_badmetrics": (cfg, "[1]")}
    for name, (config, metrics) in runs.items():
        (tmp / name).mkdir()
        (tmp / name / "config.json").write_text(config)
        (tmp / name / "metrics.json").write_text(metrics)
        (tmp / name / "best_model.pt").write_bytes(b"")
        write_digests(tmp / name, ["config.json", "metrics.json", "best_model.pt"])
    meta = json.dumps({"format": FORMAT, "config": json.loads(cfg)})
    for name, (model_json, heads) in {"export_badjson": ("{", b""),
                                      "export_badheads": (meta, b"xx")}.items():
        (tmp / name).mkdir()
        (tmp / name / "model.json").write_text(model_json)
        (tmp / name / "heads.safetensors").write_bytes(heads)
        write_digests(tmp / name, ["model.json", "heads.safetensors"])  # the files are bad


@pytest.mark.parametrize("argv,path,why", [
    ("search cat --run {tmp}/file.txt", "{tmp}/file.txt", "is a file, not a folder"),
    ("search cat --model {tmp}/file.txt", "{tmp}/file.txt", "is a file, not a folder"),
    ("export --run {tmp}/file.txt --out {tmp}/e", "{tmp}/file.txt", "is a file, not a folder"),
    ("evaluate --run {tmp}/file.txt", "{tmp}/file.txt", "is a file, not a folder"),
    ("search cat --run {tmp}/no-run --images {tmp}/file.txt", "{tmp}/file.txt",
     "is a file, not a folder"),
    ("search cat --run {tmp}/no-run --images {tmp}/nope", "{tmp}/nope", "no such folder"),
    ("search cat --run {tmp}/no-run --images {tmp}/empty", "{tmp}/empty",
     "no readable image (no file in it)"),
    ("search cat --run {tmp}/no-run --images {tmp}/bomb", "{tmp}/bomb",
     "no readable image (big.png: does not decode (DecompressionBombError: Image size (4096 "
     "pixels) exceeds limit of 2000 pixels"),
    ("tag {tmp}/bomb/big.png --run {tmp}/no-run", "{tmp}/bomb/big.png",
     "not a readable image: does not decode (DecompressionBombError: "),
    ("tag {tmp}/folder --run {tmp}/no-run", "{tmp}/folder", "is a folder, not an image file"),
    ("search cat --run {tmp}/no-run --sheet {tmp}/file.txt/x.png", "{tmp}/file.txt",
     "is a file, not a folder"),
    ("search cat --run {tmp}/run_badcfg", "{tmp}/run_badcfg/config.json",
     "unreadable (JSONDecodeError: Expecting property name enclosed in double quotes: line 1"),
    ("search cat --run {tmp}/run_nancfg", "{tmp}/run_nancfg/config.json",
     "config margin=nan: must be between 0 and 2"),
    ("search cat --run {tmp}/run_badmetrics", "{tmp}/run_badmetrics/metrics.json",
     "not a run result (a JSON object is expected)"),
    ("search cat --model {tmp}/export_badjson", "{tmp}/export_badjson/model.json",
     "unreadable (JSONDecodeError: "),
    ("search cat --model {tmp}/export_badheads", "{tmp}/export_badheads/heads.safetensors",
     "unreadable (SafetensorError: "),
    ("evaluate --scores {tmp}/folder --image-of-caption {tmp}/scores.npy", "{tmp}/folder",
     "is a folder, not a file"),
    ("evaluate --scores {tmp}/scores.npy --image-of-caption {tmp}/nope.npy", "{tmp}/nope.npy",
     "no such file"),
    ("tag {tmp}/file.txt --run {tmp}/no-run --vocab {tmp}/nope.txt", "{tmp}/nope.txt",
     "no such file"),
    ("data verify emoji --root {tmp}/folder", "{tmp}/folder", "is a folder, not a file"),
    ("data verify xtd10 --root {tmp}/file.txt", "{tmp}/file.txt", "is a file, not a folder"),
    ("data build-emoji --cldr {tmp}/file.txt", "{tmp}/file.txt", "is a file, not a folder"),
    ("compare {tmp}/file.txt {tmp}/folder", "{tmp}/file.txt", "is a file, not a folder"),
    ("train --profile paper --set coco_root={tmp}/nope --out {tmp}/t", "{tmp}/nope",
     "no such folder"),
    ("reproduce --no-notebooks --from-records --out {tmp}/folder", "{tmp}/folder/runs",
     "no such folder, so no run records to read"),
])
def test_a_bad_path_is_named_with_its_reason(argv, path, why, tmp_path, monkeypatch, capsys):
    """Every error about a file or folder names it and says what is wrong with it: a file
    where a folder is expected and the other way round (both were "no such ..."), the file of
    a run or an export that is broken and how (they were "unreadable run files
    (ReproError)"), the image a folder's search skipped and why (it was "no readable image
    (1 other files)"). One line, exit code 2, before any model loads."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a 64 x 64 image is then a "bomb"
    _bad_paths(tmp_path)
    res = call_main(cli.main, argv.format(tmp=tmp_path).split(), capsys)
    assert res.returncode == 2 and res.stdout == ""
    [line] = _error_lines(res.stderr)
    assert path.format(tmp=tmp_path) in line and why.format(tmp=tmp_path) in line, line


def test_a_broken_cache_entry_names_the_file_that_is_broken(tmp_path):
    """A feature-cache entry is an array and its metadata: the warning names the one that is
    broken (a cut .json was blamed on the .npy)."""
    import numpy as np

    from repro.towers import cache

    said = []

    def compute(items):
        return np.ones((len(items), 2), dtype=np.float32)

    cache.cached("t", {"tower": "x"}, ["a"], compute, tmp_path)
    (meta,), (arr,) = tmp_path.glob("t-*.json"), tmp_path.glob("t-*.npy")
    meta.write_text('{"tower": ')
    cache.cached("t", {"tower": "x"}, ["a"], compute, tmp_path, log=said.append)
    assert said[0] == (f"warning: feature cache {meta}: unreadable (JSONDecodeError: Expecting "
                       "value: line 1 column 11 (char 10)); rebuilding it")
    arr.write_bytes(b"junk")
    said.clear()
    cache.cached("t", {"tower": "x"}, ["a"], compute, tmp_path, log=said.append)
    assert said[0].startswith(f"warning: feature cache {arr}: unreadable (ValueError: ")


def test_jobs_over_the_usable_cores_are_capped_and_said_once(tmp_path, capsys):
    """``--jobs 1000`` on a machine of a few cores runs on those cores, said once in one
    line; an unreachable scheduler then stops the command before any work."""
    from repro.core import parallel

    cores = parallel.usable_cores()
    res = call_main(cli.main, ["reproduce", "--no-notebooks", "--jobs", "1000", "--executor",
                               "dask://127.0.0.1:9", "--out", str(tmp_path / "out"),
                               "--runs", str(tmp_path / "runs")], capsys)
    assert res.stdout.splitlines() == [
        f"--jobs 1000: capped at the {cores} usable core{'s' if cores > 1 else ''}"]
    assert res.returncode == 2 and _error_lines(res.stderr)
    assert parallel.capped_jobs(cores, log=pytest.fail) == cores
    assert parallel.capped_jobs(None, log=pytest.fail) is None
    with pytest.raises(ReproError, match="^--jobs 0: must be >= 1$"):
        parallel.capped_jobs(0)


def test_an_unreachable_dask_scheduler_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """The scheduler is reached (a connection, 3 s at most) before anything is computed or
    written: a one-line error naming the address and why; without Dask distributed
    installed, that is the error."""
    import socket

    from repro.core import parallel

    argv = ["reproduce", "--no-notebooks", "--executor", "dask://127.0.0.1:9", "--out",
            str(tmp_path / "out"), "--runs", str(tmp_path / "runs")]
    started = time.monotonic()
    res = call_main(cli.main, argv, capsys)
    assert res.returncode == 2 and res.stdout == "" and time.monotonic() - started < 10
    assert _error_lines(res.stderr) == [
        "error: --executor dask://127.0.0.1:9: no Dask scheduler answers at tcp://127.0.0.1:9 "
        "(ConnectionRefusedError: Connection refused)"]
    assert not any(tmp_path.iterdir())
    with socket.create_server(("127.0.0.1", 0)) as server:  # something that answers
        parallel.reach_executor(f"dask://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    res = call_main(cli.main, argv, capsys)
    assert _error_lines(res.stderr) == [
        "error: --executor dask://127.0.0.1:9: Dask distributed is not installed (pip install "
        "'xlir-repro[cluster]')"]


def _command(argv: list[str]) -> subprocess.Popen:
    """``python -m repro ARGV`` in a process group of its own (as a terminal starts it)."""
    return subprocess.Popen([sys.executable, "-m", "repro", *argv], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_ctrl_c_as_on_a_terminal)


def test_ctrl_c_stops_reproduce_and_its_workers_in_seconds(tmp_path):
    """A terminal's Ctrl-C reaches every process of the command: the workers computing
    features take none of it (they were started with it blocked), the main process stops
    them, and the command ends in seconds, without a traceback from any process."""
    runs = tmp_path / "runs"
    proc = _command(["reproduce", "--no-notebooks", "--profile", "mini", "--seeds", "0",
                     "--set", "epochs=1", "--jobs", "2", "--out", str(tmp_path / "out"),
                     "--runs", str(runs)])
    for line in proc.stdout:
        if line.startswith("work:"):  # said just before the workers start
            break
    time.sleep(1.5)  # the workers are starting or computing
    assert proc.poll() is None, proc.stderr.read()
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 10
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.splitlines()[-1] == (f"interrupted: before any run was written to {runs} (the "
                                    "feature sets finished so far are cached); the same "
                                    "command starts again from there")


def test_ctrl_c_before_the_first_checkpoint_says_nothing_was_kept(tmp_path):
    """Interrupted while the towers load, ``train`` named a checkpoint that was never
    written; now it says nothing was kept."""
    out = tmp_path / "run"
    proc = _command(["train", "--out", str(out), "--set", "epochs=1"])
    assert proc.stderr.readline().startswith("train: profile mini")  # then the towers load
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.splitlines()[-1] == (f"interrupted: before the run's first checkpoint, so "
                                    f"nothing was kept in {out}; the same command starts the "
                                    "run from its beginning")
    assert not (out / "checkpoint.pt").exists()
