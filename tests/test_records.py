"""Run records: the tables from the records alone are the tables of the runs, and CI's sample
check fails when a record's number changes or when the trainer's bits move."""

import json
import shutil
from collections import namedtuple

import pytest

from conftest import few_perturbations
from repro.core.errors import ReproError
from repro.experiments import records
from repro.experiments.reproduce import _write_records, run_grid, verify_sample
from repro.report.outputs import write_all

SMALL = dict(seeds=(0, 1), arms=("PATR", "M3"), towers=("muse",),
             sets=("epochs=1", "batch_size=256"), log=lambda *_: None, jobs=1)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, mini_features):
    """Two arms at two seeds trained, their tables written, their records kept; then the
    tables again from the records alone."""
    root = tmp_path_factory.mktemp("records")
    with pytest.MonkeyPatch.context() as mp:
        few_perturbations(mp)
        grid = run_grid("mini", root / "runs", **SMALL)
        files = write_all(grid, root / "tables")
        _write_records(grid, root / "paper_tables" / "runs")
        again = run_grid("mini", root / "paper_tables" / "runs", train=False, **SMALL)
        files_again = write_all(again, root / "tables-from-records")
    return root, grid, again, files, files_again


def test_tables_from_the_records_alone_are_byte_identical(recorded):
    root, grid, again, files, files_again = recorded
    assert files == files_again and "table5_towers_muse.csv" in files
    for name in files:
        assert ((root / "tables" / name).read_bytes()
                == (root / "tables-from-records" / name).read_bytes()), name
    # the records hold no weights, and every run has one
    rec = root / "paper_tables" / "runs"
    assert not list(rec.rglob("*.pt"))
    assert len(list(rec.rglob("metrics.json"))) == 4
    assert all(again.run_dir("muse", a, s).is_relative_to(rec) for a in ("PATR", "M3")
               for s in (0, 1))
    prov = records.provenance(again.run_dir("muse", "M3", 1))
    assert prov["train_seconds"] > 0 and prov["cpu_model"]


def test_the_records_log_drops_only_the_seconds(recorded):
    root, grid, again, _, _ = recorded
    run, rec = grid.run_dir("muse", "M3", 0), again.run_dir("muse", "M3", 0)
    ran = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    kept = [json.loads(line) for line in (rec / "log.jsonl").read_text().splitlines()]
    assert kept == [{k: v for k, v in e.items() if k != "seconds"} for e in ran]
    assert all("seconds" in e for e in ran)


def _copy(root, name):
    dst = root / name
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(root / "paper_tables" / "runs", dst)
    return dst


def test_the_sample_of_unchanged_code_matches_its_records(recorded, monkeypatch):
    root, _, _, _, _ = recorded
    few_perturbations(monkeypatch)  # as the records were made
    sampled = run_grid("mini", root / "runs", sample="abc", **SMALL)  # finished: reused
    assert {k.seed for k in sampled.sample} == {0, 1}
    out = verify_sample(sampled, root / "paper_tables" / "runs", log=lambda *_: None)
    assert set(out.values()) == {"identical"}


def test_a_changed_number_in_a_record_fails_the_check(recorded, monkeypatch):
    root, _, _, _, _ = recorded
    few_perturbations(monkeypatch)
    copy = _copy(root, "edited")
    metrics = copy / "mini" / "muse" / "M3" / "seed1" / "metrics.json"
    values = json.loads(metrics.read_text())
    values["retrieval"]["de"]["t2i_R@1"] += 0.1
    metrics.write_text(json.dumps(values, indent=1, sort_keys=True))
    sampled = run_grid("mini", root / "runs", sample="abc", **SMALL)
    with pytest.raises(ReproError) as err:
        verify_sample(sampled, copy, log=lambda *_: None)
    assert f"{metrics.parent}: muse M3 seed 1 retrained differs from its record in " \
           "metrics.json" in str(err.value)


def test_moved_trainer_bits_fail_the_check(recorded, tmp_path, monkeypatch):
    """One constant of the trainer changed (in this process: --jobs 1 trains here)."""
    from repro.training import trainer

    root, _, _, _, _ = recorded
    monkeypatch.setattr(trainer, "EPOCH_SEED_STRIDE", trainer.EPOCH_SEED_STRIDE + 2)
    few_perturbations(monkeypatch)
    sampled = run_grid("mini", tmp_path / "runs", sample="abc", **SMALL)
    # seed 0's batches are the same (0 x stride); seed 1's move, and with them its bits
    with pytest.raises(ReproError, match="M3 seed 1 retrained differs from its record in "
                                         ".*metrics.json"):
        verify_sample(sampled, root / "paper_tables" / "runs", log=lambda *_: None)


def test_a_missing_record_fails_the_check(recorded, monkeypatch):
    root, _, _, _, _ = recorded
    few_perturbations(monkeypatch)
    copy = _copy(root, "cut")
    shutil.rmtree(copy / "mini" / "muse" / "PATR" / "seed0")
    sampled = run_grid("mini", root / "runs", sample="abc", **SMALL)
    with pytest.raises(ReproError, match="PATR seed 0 retrained differs from its record in no "
                                         "record"):
        verify_sample(sampled, copy, log=lambda *_: None)


def test_tables_from_records_refuse_a_missing_record(recorded):
    root, _, _, _, _ = recorded
    copy = _copy(root, "cut2")
    shutil.rmtree(copy / "mini" / "muse" / "M3" / "seed1")
    with pytest.raises(ReproError, match=r"seed1: no record of muse M3 seed 1"):
        run_grid("mini", copy, train=False, **SMALL)


Key = namedtuple("Key", "tower arm seed")
Arm = namedtuple("Arm", "name")


def test_the_sample_is_every_configuration_at_its_first_seed_and_one_more_per_arm():
    planned = {("t", a): [Key("t", Arm(a), s) for s in seeds]
               for a, seeds in (("A", (0, 1, 2, 3, 4)), ("B", (0, 1, 2)), ("C", (0,)))}
    chosen = {c: records.sample_keys(planned, c) for c in (f"commit{i}" for i in range(60))}
    for sample in chosen.values():
        by_arm = {}
        for k in sample:
            by_arm.setdefault(k.arm.name, set()).add(k.seed)
        assert by_arm["C"] == {0}
        assert 0 in by_arm["A"] and len(by_arm["A"]) == 2
        assert 0 in by_arm["B"] and len(by_arm["B"]) == 2
    # the further seed follows the commit: over commits, every seed is retrained
    assert {k.seed for s in chosen.values() for k in s if k.arm.name == "A"} == {0, 1, 2, 3, 4}
    assert records.sample_keys(planned, "x") == records.sample_keys(planned, "x")
