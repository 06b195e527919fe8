"""``python -m repro search``, ``tag`` and ``export`` on a short real run: rankings checked
against a brute-force loop, the export round trip, every bad input a one-line error, and
every byte they read checked against its folder's digests."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import call_main, hold_folder_lock
from repro import cli
from repro.app import search
from repro.app.export import HEADS, META, load_run
from repro.app.model import Model
from repro.core.errors import ReproError
from repro.core.fileio import record_digest, write_digests
from repro.core.locks import LOCK_FILE
from repro.data import emoji


@pytest.fixture(scope="module")
def run(app_run):
    """A finished 2-epoch run of the default config (M3 at its defaults)."""
    return app_run


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Four emoji images, a text file and a PNG cut in half."""
    d = tmp_path_factory.mktemp("images")
    paths = emoji.emoji_image_paths(emoji.load_emoji())
    for p in paths[:4]:
        shutil.copy(p, d / p.name)
    (d / "notes.txt").write_text("not an image")
    (d / "broken.png").write_bytes(paths[5].read_bytes()[:200])
    return d


def _json(capsys, *argv):
    out = call_main(cli.main, list(argv), capsys)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout), out.stderr


def _brute_force(query: np.ndarray, items: np.ndarray, k: int) -> list[int]:
    """Best-first item indices by cosine, one Python comparison at a time (ties: first)."""
    scores = [sum(float(a) * float(b) for a, b in zip(query, row)) for row in items]
    order = []
    for _ in range(k):
        best = None
        for i, s in enumerate(scores):
            if i not in order and (best is None or s > scores[best]):
                best = i
        order.append(best)
    return order


def test_top_k_is_a_stable_best_first_ranking():
    items = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    idx, scores = search.top_k(np.array([[1.0, 0.0]]), items, 3)
    # by hand: cosines 1, 0, 1, 0.6 -> items 0 and 2 tie (input order), then 3
    assert idx.tolist() == [[0, 2, 3]] and scores.tolist() == [[1.0, 1.0, 0.6]]
    assert search.top_k(np.array([[0.0, 1.0]]), items, 10)[0].shape == (1, 4)  # k capped at n
    # a tie across the k-th place: cosines 0.6, 0.8, 0.6, 0.6 -> item 1, then the first 0.6
    idx, _ = search.top_k(np.array([[0.0, 1.0]]), np.array([[0.8, 0.6], [0.6, 0.8], [0.8, 0.6],
                                                             [0.8, 0.6]]), 2)
    assert idx.tolist() == [[1, 0]]
    rng = np.random.default_rng(0)
    q, x = rng.normal(size=(1, 8)), rng.normal(size=(50, 8))
    assert search.top_k(q, x, 7)[0][0].tolist() == _brute_force(q[0], x, 7)


def test_search_ranks_the_test_images_like_a_brute_force_loop(run, capsys):
    got, _ = _json(capsys, "search", "--run", str(run), "gato", "--lang", "es", "-k", "5", "--json")
    [found] = got["searches"]
    assert found["lang"] == "es" and [h["rank"] for h in found["hits"]] == [1, 2, 3, 4, 5]
    test_set = Model(load_run(run)).images("test")
    paths, images = [p.path for p in test_set.pictures], test_set.embeddings
    assert len(paths) == 500 and got["images"] == {"name": "emoji benchmark, test split",
                                                   "size": 500, "splits": {}}
    q = search.embed_queries(load_run(run), ["gato"], "es")[0]
    assert [paths[i] for i in _brute_force(q, images, 5)] == [h["path"] for h in found["hits"]]
    scores = [h["score"] for h in found["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(float(images[_brute_force(q, images, 1)[0]] @ q), abs=1e-4)


def test_search_a_folder_skips_and_counts_bad_files_and_writes_a_sheet(run, folder, tmp_path,
                                                                       capsys):
    sheet = tmp_path / "top.png"
    got, err = _json(capsys, "search", "--run", str(run), "cat", "--images", str(folder), "-k",
                     "9", "--json", "--sheet", str(sheet))
    [found] = got["searches"]
    assert len(found["hits"]) == 4                          # k capped at the 4 readable images
    assert {h["path"] for h in found["hits"]} == {str(p) for p in sorted(folder.glob("*.png"))
                                                  if p.name != "broken.png"}
    assert {h["name"] for h in found["hits"]} == {None}     # files, not emoji of the benchmark
    assert got["images"]["name"] == str(folder) and got["images"]["size"] == 4
    assert "skipped 2 file(s)" in err and f"wrote the contact sheet {sheet}" in err
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tag_gives_polish_tags_of_the_vocabulary_side_by_side(run, tmp_path, capsys):
    img = emoji.emoji_image_paths(emoji.load_emoji())[0]
    got, _ = _json(capsys, "tag", "--run", str(run), str(img), "--lang", "pl,ja", "-k", "5", "--json")
    assert got["langs"] == ["pl", "ja"]                  # the codes as given (ja, not jp)
    tags = got["images"][0]["tags"]
    assert got["images"][0]["names"]["en"] == emoji.load_emoji().items[0]["name"]["en"]
    jp_vocab = set(emoji.load_emoji().tag_vocabulary("jp")[0])
    assert len(tags["ja"]) == 5 and all(t["tag"] in jp_vocab for t in tags["ja"])
    vocab = set(emoji.load_emoji().tag_vocabulary("pl")[0])
    assert len(tags["pl"]) == 5 and all(t["tag"] in vocab for t in tags["pl"])
    vocab_file = tmp_path / "v.txt"
    vocab_file.write_text("kot\n\npies\nkot\nsamochód\n", encoding="utf-8")
    got, _ = _json(capsys, "tag", "--run", str(run), str(img), "--vocab", str(vocab_file),
                   "--lang", "pl", "-k", "5", "--json")
    assert sorted(t["tag"] for t in got["images"][0]["tags"]["pl"]) == ["kot", "pies", "samochód"]
    out = call_main(cli.main, ["tag", "--run", str(run), str(img), "--lang", "pl,tr"], capsys)
    [columns] = [line.split() for line in out.stdout.splitlines() if line.startswith("  rank")]
    assert out.returncode == 0 and columns == ["rank", "pl", "tr"]


def test_export_round_trip_gives_the_same_ranking_and_checks_the_weights(run, tmp_path, capsys):
    model = tmp_path / "model"
    out = subprocess.run([sys.executable, "-m", "repro", "export", "--run", str(run), "--out",
                          str(model)], capture_output=True, text=True)   # once as a process
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in model.iterdir()) == ["digests.json", "heads.safetensors",
                                                       "model.json"]
    by_run, _ = _json(capsys, "search", "--run", str(run), "smiling face", "--json")
    by_model, _ = _json(capsys, "search", "--model", str(model), "smiling face", "--json")
    assert by_run["searches"] == by_model["searches"]
    assert (by_run["model"]["kind"], by_model["model"]["kind"]) == ("run", "export")
    meta = json.loads((model / "model.json").read_text())
    assert meta["data_sha256"] and meta["summary"] and meta["text_tower"]["weights_sha256"]
    assert meta["arm"] == load_run(run).cfg.arm  # names its arm, not only the loss key
    meta["text_tower"]["weights_sha256"] = "0" * 64
    (model / "model.json").write_text(json.dumps(meta))
    write_digests(model, (HEADS, META))  # as an export made with other tower weights is
    out = call_main(cli.main, ["search", "--model", str(model), "cat"], capsys)
    assert out.returncode == 2 and "installed text tower differs" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = call_main(cli.main, ["export", "--run", str(run), "--out", str(run)], capsys)
    assert out.returncode == 2 and "not an export folder" in out.stderr


def test_bad_inputs_are_one_line_errors(run, folder, tmp_path, capsys):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished)
    (unfinished / "metrics.json").unlink()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("x")
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("kot\nżółw\n".encode("utf-16"))
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n")
    bad_weights = tmp_path / "bad_weights"
    shutil.copytree(run, bad_weights)
    (bad_weights / "best_model.pt").write_bytes(b"not a state dict")
    record_digest(bad_weights, "best_model.pt")  # past the digest check: the file itself is bad
    cases = [
        (["search", "--run", str(run), "  "], "empty text"),
        (["search", "--run", str(run), "cat", "--lang", "xx"], "--lang xx: unknown language"),
        (["search", "--run", str(run), "cat", "-k", "0"], "-k 0: must be >= 1"),
        (["search", "cat"], "give one of --run"),
        (["search", "--run", str(run), "--model", str(run), "cat"], "give one of --run"),
        (["search", "--run", str(unfinished), "cat"], "not a finished run (no metrics.json)"),
        (["search", "--run", str(tmp_path / "nope"), "cat"], "no such folder"),
        (["search", "--run", str(bad_weights), "cat"],
         f"{bad_weights / 'best_model.pt'}: unreadable (UnpicklingError: "),
        (["search", "--run", str(run), "cat", "--images", str(empty)], "no readable image"),
        (["search", "--run", str(run), "cat", "--sheet", str(tmp_path / "x.jpg")], "must end in .png"),
        (["search", "--run", str(run), "cat", "--sheet", str(tmp_path / "no/x.png")], "no such folder"),
        (["search", "--model", str(run), "cat"], "not an exported model"),
        (["tag", "--run", str(run), str(folder / "notes.txt")], "not a readable image"),
        (["tag", "--run", str(run), str(folder / "broken.png")], "not a readable image"),
        (["tag", "--run", str(run), str(tmp_path / "none.png")], "no such image file"),
        (["tag", "--run", str(run), str(folder / "notes.txt"), "--vocab", str(blank)], "no tag in it"),
        (["tag", "--run", str(run), str(folder / "notes.txt"), "--vocab", str(utf16)], "not UTF-8"),
    ]
    for argv, message in cases:
        out = call_main(cli.main, argv, capsys)
        assert out.returncode == 2 and message in out.stderr, (argv, out.stderr)
        assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1
        assert out.stdout == ""
    assert not (tmp_path / "x.jpg").exists()
    with pytest.raises(ReproError, match="unknown language"):
        search.check_lang("klingon")
    assert search.check_lang("JA") == "jp"


def _flip_a_byte(path) -> None:
    """Flip one bit of the middle byte of ``path`` (same size: inside a weight tensor)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def _refused(argv: list, capsys, why: str) -> None:
    """``argv`` ends with exit 2 and the one line ``error: <why>...``, nothing on stdout."""
    res = call_main(cli.main, argv, capsys)
    assert res.returncode == 2 and res.stdout == "", (argv, res.stderr)
    [line] = res.stderr.strip().splitlines()
    assert line.startswith(f"error: {why}"), (argv, line)


def test_a_changed_byte_in_best_model_is_refused_by_search_tag_evaluate_and_export(
        run, tmp_path, capsys):
    """search, tag, export and evaluate --run read best_model.pt only as the bytes the run's
    digests.json records: one flipped bit, and each refuses with one line naming the file."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    _flip_a_byte(copy / "best_model.pt")
    img = emoji.emoji_image_paths(emoji.load_emoji())[0]
    why = f"{copy / 'best_model.pt'}: changed after it was written (its sha256 is not the one"
    for argv in (["search", "--run", str(copy), "cat"],
                 ["tag", "--run", str(copy), str(img)],
                 ["export", "--run", str(copy), "--out", str(tmp_path / "model")],
                 ["evaluate", "--run", str(copy)]):
        _refused(argv, capsys, why)
    assert not (tmp_path / "model").exists()
    assert sorted(os.listdir(copy)) == sorted(os.listdir(run))  # nothing written, no lock left
    assert (copy / "metrics.json").read_bytes() == (run / "metrics.json").read_bytes()


def test_a_changed_export_is_refused_naming_the_file(run, tmp_path, capsys):
    """An export records the sha256 of its heads in model.json and of both files in
    digests.json: a flipped bit in the heads, an edited summary in model.json, or heads
    swapped with digests.json recorded again, and loading it is a one-line error."""
    model = tmp_path / "model"
    assert call_main(cli.main, ["export", "--run", str(run), "--out", str(model)],
                     capsys).returncode == 0
    heads, meta = (model / HEADS).read_bytes(), (model / META).read_text()
    img = str(emoji.emoji_image_paths(emoji.load_emoji())[0])
    changed = "changed after it was written (its sha256 is not the one the digests.json beside"

    _flip_a_byte(model / HEADS)
    for argv in (["search", "--model", str(model), "cat"], ["tag", "--model", str(model), img]):
        _refused(argv, capsys, f"{model / HEADS}: {changed}")
    (model / HEADS).write_bytes(heads)

    edited = json.loads(meta)
    key = next(iter(edited["summary"]))
    edited["summary"][key] = 99.9
    (model / META).write_text(json.dumps(edited, indent=1, sort_keys=True) + "\n")
    _refused(["search", "--model", str(model), "cat"], capsys, f"{model / META}: {changed}")
    (model / META).write_text(meta)

    _flip_a_byte(model / HEADS)
    write_digests(model, (HEADS, META))
    _refused(["search", "--model", str(model), "cat"], capsys,
             f"{model / META}: describes other heads (its heads_sha256 is not the sha256 of "
             f"{HEADS})")
    (model / HEADS).write_bytes(heads)
    write_digests(model, (HEADS, META))
    assert call_main(cli.main, ["search", "--model", str(model), "cat"], capsys).returncode == 0


def test_export_into_a_folder_being_written_fails_at_once(run, tmp_path, capsys):
    """One writer per export folder: another process holds it, and export refuses with one
    line naming the folder and that process, writing nothing."""
    model = tmp_path / "model"
    holder = hold_folder_lock(model)
    try:
        _refused(["export", "--run", str(run), "--out", str(model)], capsys,
                 f"--out {model}: being written by another process (pid {holder.pid} on ")
        assert sorted(os.listdir(model)) == [LOCK_FILE]
    finally:
        holder.kill()
        holder.wait()
