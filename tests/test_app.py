"""The Python API of the app (``from repro import app``): a model loaded once answers batches
of queries and images with one tower load, in typed records that name what each hit is; the
command line prints those records (header, names in the query's language and English,
split); the query benchmark reports the same single tower load."""

import dataclasses

import pytest

from conftest import call_main
from repro import app, cli
from repro.app import render, search
from repro.bench.suite import bench_query
from repro.data import emoji
from repro.training import tasks


@pytest.fixture
def tower_loads(monkeypatch):
    """Counts every text-tower load, by the API or by the feature cache's encoder."""
    loads = []
    real = search.make_text_tower

    def counted(cfg):
        loads.append(cfg.text_tower)
        return real(cfg)

    monkeypatch.setattr(search, "make_text_tower", counted)
    monkeypatch.setattr(tasks, "make_text_tower", counted)
    return loads


def _benchmark_items() -> dict:
    """Twemoji id -> the benchmark's item (names, split)."""
    return {it["twemoji"]: it for it in emoji.load_emoji().items}


def test_a_loaded_model_answers_batches_with_one_tower_load(app_run, tower_loads):
    m = app.load(app_run)
    batch = m.search(["gato", "perro"], lang="es", k=5)
    alone = m.search("perro", lang="es", k=5)
    tagged = m.tag([batch[0].hits[0].path], langs=["pl", "ja"], k=3)
    m.tag([batch[0].hits[1].path], langs=["pl"], k=3)
    assert tower_loads == ["muse"] and m.tower_loads == 1   # loaded at the first query, kept
    assert [s.query for s in batch] == ["gato", "perro"] and all(len(s.hits) == 5 for s in batch)
    # a query in a batch ranks as it does alone (same images, scores within float rounding)
    assert [h.image_id for h in alone[0].hits] == [h.image_id for h in batch[1].hits]
    assert [h.score for h in alone[0].hits] == pytest.approx([h.score for h in batch[1].hits],
                                                            abs=2e-4)
    items = _benchmark_items()
    for h in batch[0].hits:  # each hit names its emoji in Spanish and English, from the test split
        item = items[h.image_id]
        assert (h.name, h.name_en, h.emoji, h.split) == (item["name"]["es"], item["name"]["en"],
                                                         item["cp"], "test")
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch[0].hits[0].score = 1.0
    [t] = tagged
    assert list(t.tags) == ["pl", "ja"] and t.picture.image_id == batch[0].hits[0].image_id
    assert all(tag.tag in set(search.vocabulary("jp")) for tag in t.tags["ja"])


def test_ja_is_japanese_and_all_emoji_span_every_split(app_run):
    m = app.load(app_run)
    [found] = m.search("猫", lang="ja", k=len(emoji.load_emoji().items), images="all")
    items = _benchmark_items()
    assert found.lang == "ja"                       # the code as given, names in Japanese (jp)
    assert all(h.name == items[h.image_id]["name"]["jp"] for h in found.hits)
    splits = {s: sum(h.split == s for h in found.hits) for s in ("train", "val", "test")}
    assert splits == m.images("all").info.splits == {"train": 1249, "val": 100, "test": 500}
    assert m.images("test").info.size == 500


def test_search_prints_a_header_and_each_hit_by_name(app_run, capsys):
    out = call_main(cli.main, ["search", "--run", str(app_run), "gato", "perro", "--lang", "es",
                               "-k", "3"], capsys)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == (f"model: {app_run} (run; arm M3, text tower muse, image backbone "
                        "efficientnet_lite0, mini profile, seed 0)")
    assert lines[1] == "images: emoji benchmark, test split, 500 images"
    assert [line for line in lines if line.startswith("query")] == [
        "query 'gato' (es): top 3", "query 'perro' (es): top 3"]
    found = app.load(app_run).search(["gato", "perro"], lang="es", k=3)
    hit_lines = [line for line in lines if line[:6].strip().isdigit()]
    assert hit_lines == [f"  {h.rank:>4}  {h.score:.4f}  test   {h.emoji} {h.name} / "
                         f"{h.name_en}  [{h.image_id}]" for s in found for h in s.hits]
    out = call_main(cli.main, ["search", "--run", str(app_run), "cat", "--all-emoji",
                               "--images", str(app_run)], capsys)
    assert out.returncode == 2 and "give one" in out.stderr


def test_tags_are_cut_with_an_ellipsis_and_wide_characters_count_twice():
    assert render.display_width("耳の不自由な人") == 14 and render.display_width("kot") == 3
    cut = render.fit("dziewiętnasta trzydzieści", 16)
    assert cut == "dziewiętnasta t…" and render.display_width(cut) == 16
    assert render.fit("耳の不自由な人", 10) == "耳の不自… "   # 4 wide (8 columns), …, 1 space
    assert render.fit("kot", 5) == "kot  "


def test_the_query_benchmark_loads_the_tower_once(app_run, tower_loads, capsys):
    rows = bench_query(str(app_run))
    assert tower_loads == ["muse"]
    assert [r["tower_loads"] for r in rows] == [0, 1, 1, 1, 1]
    assert rows[2]["case"].startswith("later query, median of 11")
