"""Verdicts belong to the declared endpoints: the committed paper_tables/ walked cell by cell,
and Table 0 built from a small matrix by hand."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from repro import design
from repro.report import endpoints
from repro.scoring import stats

TABLES = Path(__file__).resolve().parents[1] / "paper_tables"
WORDS = set(stats.VERDICTS)


def _csv(name: str) -> list[dict]:
    with open(TABLES / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_every_verdict_word_in_paper_tables_belongs_to_a_declared_endpoint():
    """Walk every table of paper_tables/: a verdict word stands only in a verdict column of
    Table 0, in the row of a declared endpoint at its declared setting, and follows from the
    interval printed beside it; no other cell of any table holds one."""
    schema = json.loads((TABLES / "tables.json").read_text(encoding="utf-8"))["tables"]
    declared = {e.name: e.setting for e in design.ENDPOINTS}
    verdicts = 0
    for name, entry in schema.items():
        verdict_columns = [c for c in entry["columns"] if c["kind"] == "verdict"]
        for row in _csv(name):
            for column in entry["columns"]:
                if column["kind"] == "verdict":
                    continue
                for field in column["csv"]:
                    assert row[field] not in WORDS, (name, field, row[field])
            for column in verdict_columns:
                assert name == "table0_endpoints.csv", name
                word = row[f"{column['name']} verdict"]
                if not word:  # a within-noise row: an estimate, no verdict
                    assert row["setting"].startswith("within noise: "), row
                    continue
                verdicts += 1
                assert declared.get(row["endpoint"]) == row["setting"], row
                low, high = (float(row[f"{column['name']} {f}"]) for f in ("low", "high"))
                assert word == stats.verdict_word(low, high), row
                shown = (float(row["interval at the endpoint's Holm level low"]),
                         float(row["interval at the endpoint's Holm level high"]))
                assert shown == (low, high), row
                p, level = (float(row[f"{column['name']} {f}"]) for f in ("p", "level"))
                assert (p <= level) == (word != "no difference shown"), row
    assert verdicts == len(design.ENDPOINTS)


def test_no_printed_interval_contradicts_a_verdict():
    """An estimate's interval never sits beside a verdict word (there are none outside Table
    0), and every Table 0 row's crossed 95% interval contains its mean."""
    for row in _csv("table0_endpoints.csv"):
        mean = float(row["difference mean"])
        assert float(row["difference CI low"]) <= mean <= float(row["difference CI high"])
        assert int(row["difference n"]) >= 2 and int(row["difference items"]) > 0


def test_endpoints_read_only_declared_arms_and_their_variants_are_within_noise_settings():

    for e in design.ENDPOINTS:
        for tower, arm in e.arms:
            assert arm in design.tower_arms(tower), (e.name, tower, arm.name)
            assert arm.seeds is None, (e.name, arm.name)  # every seed of the grid
    own = next(e for e in design.ENDPOINTS if e.name == "own optimum")
    assert len(own.variants) == (1 + len(design.NOISE_M3_SETTINGS)) * (1 + len(design.NOISE_PATR_LRS)) - 1


def test_within_noise_settings_are_the_sweeps():
    """The design's within-noise settings are exactly those the defaults sweep's record marks
    'within noise' (M3, PATR) and the caption options with at least its noise share."""

    record = json.loads((Path(__file__).resolve().parents[1] / "docs" / "sweeps"
                         / "defaults_mini.json").read_text())
    share = record["noise_share"]
    captions = {c for c, v in record["caption_shares"].items()
                if v["win_share"] >= share and c != record["captions"]}
    assert captions == set(design.NOISE_CAPTIONS)
    def setting(row, key):  # the last value of key=value in the row's overrides
        return float([kv.split("=")[1] for kv in row["settings"].split() if kv.startswith(key + "=")][-1])

    noisy = [r for r in record["rows"] if r.get("chosen") == "within noise"]
    m3 = {(setting(r, "lambda_tt"), setting(r, "lr")) for r in noisy if r["arm"] == "M3"}
    patr = {setting(r, "lr") for r in noisy if r["arm"] == "PATR"}
    assert m3 == set(design.NOISE_M3_SETTINGS) and patr == set(design.NOISE_PATR_LRS)


def test_chance_scores_by_hand():
    """Two images, one language: 1 true tag of 4 (H_4 / 4 = 0.5208) and all 4 (1)."""

    class Vocab:
        feats = np.zeros((4, 3))

    class Task:
        tags = {"de": (Vocab(), [np.array([2]), np.array([0, 1, 2, 3])])}

    got = endpoints.chance_scores(Task(), ("de",))
    assert got == pytest.approx([100 * (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4, 100.0])
