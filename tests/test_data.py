"""Data layer: XTD10 (shared copy, bad inputs, download), COCO fixture, emoji builder."""

import http.server
import json
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from repro import cli
from repro.core import fileio
from repro.core.errors import ReproError
from repro.data import emoji, paper

from conftest import call_main, make_coco


# ----------------------------------------------------------------------------- XTD10

def test_xtd10_shared_copy_reads_all_languages(xtd10_dir):
    x = paper.load_xtd10(xtd10_dir)
    assert set(x.captions) == set(paper.LANGS)
    assert all(len(c) == 1000 for c in x.captions.values())
    assert len(x.image_names) == 1000
    assert sum(n.startswith("COCO_train2014_") for n in x.image_names) == 800
    assert x.coco_ids[0] == 61844
    # CRLF files: no caption keeps a carriage return or stray space.
    assert not any(c != c.strip() or "\r" in c for caps in x.captions.values() for c in caps)


@pytest.fixture
def xtd10_copy(xtd10_dir, tmp_path):
    dst = tmp_path / "xtd10"
    shutil.copytree(xtd10_dir, dst)
    for p in dst.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


def test_missing_file_named(xtd10_copy):
    (xtd10_copy / "MIC/test_1kcaptions_fr.txt").unlink()
    with pytest.raises(ReproError, match=r"test_1kcaptions_fr\.txt: file not found"):
        paper.load_xtd10(xtd10_copy)


def test_removed_line_named(xtd10_copy):
    p = xtd10_copy / "XTD10/test_1kcaptions_ko.txt"
    lines = p.read_bytes().splitlines(keepends=True)
    p.write_bytes(b"".join(lines[:10] + lines[11:]))
    with pytest.raises(ReproError, match=r"test_1kcaptions_ko\.txt: 999 lines, expected 1000"):
        paper.load_xtd10(xtd10_copy)


def test_changed_byte_named(xtd10_copy):
    p = xtd10_copy / "XTD10/test_1kcaptions_en.txt"
    raw = bytearray(p.read_bytes())
    raw[0] = ord("X") if raw[0] != ord("X") else ord("Y")
    p.write_bytes(bytes(raw))
    with pytest.raises(ReproError, match=r"test_1kcaptions_en\.txt: sha256 .* does not match"):
        paper.load_xtd10(xtd10_copy)
    jp = xtd10_copy / "STAIR/test_1kcaptions_jp.txt"
    jp.write_bytes(b"\xff" + jp.read_bytes()[1:])  # a broken UTF-8 byte is named too
    with pytest.raises(ReproError, match=r"test_1kcaptions_jp\.txt: not UTF-8"):
        paper.load_xtd10(xtd10_copy, langs=("jp",))


def test_empty_caption_named(xtd10_copy):
    p = xtd10_copy / "XTD10/test_1kcaptions_es.txt"
    lines = p.read_bytes().splitlines(keepends=True)
    lines[5] = b"   \r\n"
    p.write_bytes(b"".join(lines))
    with pytest.raises(ReproError, match=r"test_1kcaptions_es\.txt: empty line 6"):
        paper.load_xtd10(xtd10_copy)


def test_wrong_language_code(xtd10_dir):
    with pytest.raises(ReproError, match="unknown XTD10 language code 'ja'"):
        paper.load_xtd10(xtd10_dir, langs=("en", "ja"))


def test_cli_verify_xtd10(xtd10_dir, xtd10_copy, capsys):
    ok = subprocess.run([sys.executable, "-m", "repro", "data", "verify", "xtd10", "--root",
                         str(xtd10_dir)], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.strip().endswith(
        "(sha256 and 1000 lines per file, commit d77ff16)")
    assert "jp: 1000 captions" in ok.stdout
    (xtd10_copy / "XTD10/test_image_names.txt").unlink()
    bad = call_main(cli.main, ["data", "verify", "xtd10", "--root", str(xtd10_copy)], capsys)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "test_image_names.txt: file not found" in bad.stderr


# ----------------------------------------------------------------------------- downloads

class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder, honouring 'Range: bytes=N-'; counts requests."""

    hits: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.directory) / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        start = 0
        rng = self.headers.get("Range")
        type(self).hits.append((self.path, rng))
        if rng:
            start = int(rng.split("=")[1].rstrip("-"))
            self.send_response(206)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    _RangeHandler.hits = []
    handler = lambda *a, **k: _RangeHandler(*a, directory=str(root), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_resumes_partial_file(server, tmp_path):
    root, url = server
    payload = bytes(range(256)) * 100
    (root / "f.bin").write_bytes(payload)
    dest = tmp_path / "out" / "f.bin"
    dest.parent.mkdir()
    (dest.parent / "f.bin.part").write_bytes(payload[:1000])
    digest = __import__("hashlib").sha256(payload).hexdigest()
    paper.download(f"{url}/f.bin", dest, digest, progress=False)
    assert dest.read_bytes() == payload
    assert _RangeHandler.hits == [("/f.bin", "bytes=1000-")]


def test_corrupt_cached_file_is_fetched_again(server, tmp_path):
    root, url = server
    (root / "f.bin").write_bytes(b"good bytes")
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"bad bytes!")  # a corrupt earlier copy: never used
    digest = __import__("hashlib").sha256(b"good bytes").hexdigest()
    paper.download(f"{url}/f.bin", dest, digest, progress=False)
    assert dest.read_bytes() == b"good bytes"


def test_download_with_wrong_checksum_fails_and_leaves_nothing(server, tmp_path):
    root, url = server
    (root / "f.bin").write_bytes(b"tampered")
    dest = tmp_path / "f.bin"
    with pytest.raises(ReproError, match="failed its check"):
        paper.download(f"{url}/f.bin", dest, "0" * 64, progress=False)
    assert not dest.exists() and not (tmp_path / "f.bin.part").exists()


def test_xtd10_downloads_into_cache_with_licence(server, xtd10_dir, monkeypatch, tmp_path):
    root, url = server
    shutil.copytree(xtd10_dir, root / "repo")
    monkeypatch.setattr(paper, "XTD10_URL", url + "/repo/{path}")
    monkeypatch.setenv("XLIR_CACHE", str(tmp_path / "cache"))
    x = paper.load_xtd10()
    cached = tmp_path / "cache" / "xtd10-d77ff16"
    assert x.root == cached and (cached / "LICENSE.md").is_file()
    assert len(x.captions["zh"]) == 1000
    n_requests = len(_RangeHandler.hits)
    paper.load_xtd10()  # second time: all from the cache
    assert len(_RangeHandler.hits) == n_requests


def test_truncated_zip_is_detected(tmp_path):
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("x.txt", "hello" * 1000)
    assert paper.verify_zip(z) is None
    z.write_bytes(z.read_bytes()[:-30])
    assert "not a complete zip" in paper.verify_zip(z)


# ----------------------------------------------------------------------------- COCO fixture

def test_coco_fixture_splits_exclude_xtd10(tmp_path, xtd10_dir, capsys):
    x = paper.load_xtd10(xtd10_dir)
    xtd_train = [i for n, i in zip(x.image_names, x.coco_ids) if "train2014" in n][:3]
    xtd_val = [i for n, i in zip(x.image_names, x.coco_ids) if "val2014" in n][:2]
    make_coco(tmp_path, {"train2014": xtd_train + [1, 2, 3, 4, 5, 6],
                         "val2014": xtd_val + [7, 8, 9]})
    caps = paper.load_coco_captions(tmp_path)
    assert len(caps) == 2 * 14 and caps[0].caption == "image %d caption 0" % xtd_train[0]
    train, val = paper.coco_splits(caps, x.coco_ids, n_val=2)
    train_ids = {c.image_id for c in train}
    assert not train_ids & set(x.coco_ids)  # no XTD10 image reaches training
    assert len({c.image_id for c in val}) == 2 and not {c.image_id for c in val} & set(x.coco_ids)
    assert not train_ids & {c.image_id for c in val}
    assert train_ids | {c.image_id for c in val} == set(range(1, 10))
    leak, _ = paper.coco_splits(caps, x.coco_ids, n_val=2, allow_leak=True)
    assert set(xtd_train) <= {c.image_id for c in leak}
    for c in caps:
        assert paper.coco_image_path(tmp_path, c.split, c.image_id).is_file()
    out = call_main(cli.main, ["data", "verify", "coco", "--root", str(tmp_path)], capsys)
    assert out.returncode == 0 and out.stdout.strip().endswith("OK"), out.stderr


def test_coco_val_ids_are_seeded_and_fixed():
    a = paper.coco_val_ids(range(100, 200), n=10)
    assert a == paper.coco_val_ids(reversed(range(100, 200)), n=10)
    assert len(set(a)) == 10


def test_coco_bad_json_named(tmp_path):
    make_coco(tmp_path, {"train2014": [1], "val2014": [2]})
    (tmp_path / "annotations" / "captions_val2014.json").write_text("{broken")
    with pytest.raises(ReproError, match=r"captions_val2014\.json: invalid JSON"):
        paper.load_coco_captions(tmp_path)


# ----------------------------------------------------------------------------- emoji

def test_emoji_builder_identical_bytes(cldr_dir, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    emoji.build_emoji_asset(cldr_dir, a)
    emoji.build_emoji_asset(cldr_dir, b)
    assert a.read_bytes() == b.read_bytes() == emoji.EMOJI_ASSET.read_bytes()
    e = emoji.load_emoji(a)
    assert len(e.items) == 1849
    assert all(set(it["name"]) == set(paper.LANGS) for it in e.items)
    assert [len(e.indices(s)) for s in ("test", "val", "train")] == [500, 100, 1249]


def test_emoji_views():
    e = emoji.load_emoji()
    test = e.indices("test")
    assert len(e.names("jp", test)) == 500
    texts, owner = e.english_captions("train")
    assert set(owner) <= set(e.indices("train").tolist())
    vocab, tags = e.tag_vocabulary("de")
    assert len(tags) == 1849 and all(t.size for t in tags[:50])
    paths = emoji.emoji_image_paths(e)
    assert len(paths) == 1849 and all(p.suffix == ".png" for p in paths)
    assert len(set(paths)) == 1849  # one image per emoji


def test_emoji_cli_verify(capsys):
    out = call_main(cli.main, ["data", "verify", "emoji"], capsys)
    assert out.returncode == 0 and "1849 items, 11 languages: OK" in out.stdout


# ----------------------------------------------------------------------------- emoji v2 split

def test_emoji_groups_by_variant_key_and_identical_images():
    # man / woman / person runner (with ZWJ, female sign, VS16) and a plain runner are one
    # group; two different emoji with byte-identical images are one group; the rest alone.
    runner, man, woman = "\U0001F3C3", "\U0001F468", "\U0001F469"
    cps = [runner, runner + "\u200d\u2640\ufe0f", runner + "\u200d\u2642\ufe0f",
           "\U0001F1F3\U0001F1F4", "\U0001F1F8\U0001F1EF", "\U0001F600",
           man + "\u200d\u2696\ufe0f", woman + "\u200d\u2696\ufe0f", "\U0001F600\U0001F600"]
    shas = ["a", "b", "c", "flag", "flag", "d", "e", "f", "g"]
    assert emoji.variant_key(runner + "\u200d\u2640\ufe0f") == (0x1F3C3,)
    assert emoji.emoji_groups(cps, shas) == [0, 0, 0, 1, 1, 2, 3, 3, 4]


def test_grouped_split_keeps_groups_whole_and_fills_the_sizes():
    groups = [0, 0, 0, 1, 2, 2, 3, 4, 5, 6, 6, 7, 8, 9]
    split = emoji.grouped_split(groups, seed=1, sizes={"test": 4, "val": 2})
    for g in set(groups):
        assert len({s for s, gg in zip(split, groups) if gg == g}) == 1
    assert split.count("test") <= 4 and split.count("val") <= 2
    assert split == emoji.grouped_split(groups, seed=1, sizes={"test": 4, "val": 2})


def test_shipped_asset_no_group_straddles_splits():
    """Recompute the groups from the shipped items (code points and image bytes) and check
    that none straddles two splits; the stored image hashes are the installed files'."""
    e = emoji.load_emoji()
    paths = emoji.emoji_image_paths(e)
    shas = [fileio.sha256_file(p) for p in paths]
    assert shas == [it["image_sha256"] for it in e.items]
    groups = emoji.emoji_groups([it["cp"] for it in e.items], shas)
    assert groups == [it["group"] for it in e.items]
    split_of = {}
    for g, it in zip(groups, e.items):
        assert split_of.setdefault(g, it["split"]) == it["split"], it["name"]["en"]
    assert [len(e.indices(s)) for s in ("test", "val", "train")] == [500, 100, 1249]
    # the v1 split is kept for Table 2d and does straddle (what v2 fixes)
    v1 = {}
    straddle = {g for g, it in zip(groups, e.items) if v1.setdefault(g, it["split_random"])
                != it["split_random"]}
    assert len(straddle) > 10
    blob = json.loads(emoji.EMOJI_ASSET.read_text(encoding="utf-8"))
    assert "byte-identical" in blob["grouping_rule"]
    # Svalbard & Jan Mayen and Norway share one image: same split
    by_name = {it["name"]["en"]: it for it in e.items}
    assert by_name["flag: Svalbard & Jan Mayen"]["split"] == by_name["flag: Norway"]["split"]


def test_caption_options():
    e = emoji.load_emoji()
    names, owner_n = e.english_captions("train", "names")
    full, owner_f = e.english_captions("train", "names+keywords")
    uniq, owner_u = e.english_captions("train", "names+unique_keywords")
    assert len(names) == 1249 and len(names) < len(uniq) < len(full)
    assert set(owner_n) == set(owner_f) == set(owner_u)
    # a unique keyword of the split appears once among all keyword captions
    extra = [t for t, o in zip(uniq, owner_u) if t != e.items[o]["name"]["en"]]
    all_kw = [k for i in e.indices("train") for k in set(e.items[i]["keywords"]["en"])]
    assert all(all_kw.count(k) == 1 for k in extra[:200])
    with pytest.raises(ReproError, match="unknown caption option"):
        e.english_captions("train", "keywords")


def test_text_ids_normalise():
    from repro.data.textids import TextNumbering, normalize_text

    assert normalize_text("  Grinning\u00a0FACE ") == "grinning face"
    assert normalize_text("ｆｌａｇ") == "flag"   # NFKC folds full-width letters
    assert TextNumbering().ids(["flag", "Flag ", "face", "flag"]).tolist() == [0, 0, 1, 0]
    numbering = TextNumbering()  # one numbering across lists: a text in two lists, one id
    a, b = numbering.ids(["OK", "x"]), numbering.ids(["ok", "y"])
    assert a.tolist() == [0, 1] and b.tolist() == [0, 2]
