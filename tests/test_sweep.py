"""The defaults sweep (repro.experiments.sweep): per-item validation scores, the declared choice rule with
its stability, the record and the trainer digest that keeps the record current."""

import json

import numpy as np
import pytest

from repro.config import make_config
from repro.experiments import sweep
from repro.training import evaluation, trainer


def test_validation_item_scores_average_to_the_validation_rsum(tmp_path, mini_task):
    cfg = make_config("mini", ["epochs=2", "batch_size=256"])
    model, state = trainer.train(cfg, tmp_path / "r", mini_task)
    per_item = evaluation.validation_item_scores(model, mini_task)
    assert per_item.shape == (mini_task.val_images.shape[0],)
    # one name per validation emoji: the mean is the R-sum, each item 0..600 in steps of 100
    assert float(per_item.mean()) == pytest.approx(evaluation.validate(model, mini_task)["rsum"])
    assert float(per_item.mean()) == pytest.approx(state.best_score)
    assert set(np.unique(per_item)) <= {100.0 * k for k in range(7)}


def _row(arm, setting, per_item):
    return {"stage": "2", "arm": arm, "setting": setting, "settings": setting,
            "val_rsum_mean": float(np.mean(per_item)), "val_rsum_per_seed": "",
            "plateau_escape_steps": "", "per_item": np.asarray(per_item).tolist()}


def test_choice_rule_marks_the_winner_and_the_settings_within_noise():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 7, (5, 100)) * 100.0
    rows = [_row("M3", "a", base), _row("M3", "b", base + 1.0),    # b beats a everywhere
            _row("M3", "c", base - 300.0),                          # far below
            _row("PATR", "x", base)]
    best = sweep.choose(rows)
    assert best["M3"]["setting"] == "b" and best["PATR"]["setting"] == "x"
    assert [r["chosen"] for r in rows] == ["", "yes", "", "yes"]
    assert rows[1]["win_share"] == 1.0 and rows[3]["win_share"] == 1.0
    # two settings inside each other's noise: both win often, the second is marked
    noisy = [_row("A", "p", base + rng.normal(0, 30, base.shape)),
             _row("A", "q", base + rng.normal(0, 30, base.shape))]
    sweep.choose(noisy)
    assert sorted(r["chosen"] for r in noisy) == ["within noise", "yes"]
    assert min(r["win_share"] for r in noisy) >= sweep.NOISE_SHARE


def test_record_writes_json_and_its_table(tmp_path):
    rows = [_row("PATR", "lr 1e-3", np.full((5, 4), 200.0))]
    sweep.choose(rows)
    result = {"rows": rows, "commit": "abc1234", "trainer_digest": "f" * 64, "seeds": [0, 1],
              "draws": 10, "captions": "names", "caption_shares": {
                  "names": {"mean": 200.0, "win_share": 1.0, "low": 190.0, "high": 210.0}}}
    sweep.write_record(result, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["commit"] == "abc1234"
    md = (tmp_path / "r.md").read_text()
    assert "commit abc1234, trainer digest `ffffffffffffffff`" in md
    assert "| 2 | PATR | lr 1e-3 | 200.0 (200.0–200.0) | 100% |" in md
    assert "names 200.0 (wins 100%) -> **names**" in md


def test_trainer_digest_is_reproducible_and_moves_with_the_bits(mini_task, monkeypatch):
    monkeypatch.setattr(sweep, "DIGEST_RUNS", (("loss=patr", "lambda_tt=1", "epochs=1"),))
    a, b = sweep.trainer_digest(mini_task), sweep.trainer_digest(mini_task)
    monkeypatch.setattr(sweep, "DIGEST_RUNS", (("loss=patr", "lambda_tt=0.5", "epochs=1"),))
    assert a == b and len(a) == 64 and sweep.trainer_digest(mini_task) != a
    assert "torch_threads" not in sweep.numerics_fingerprint()


def test_the_sweep_record_is_current_with_the_trainer(keyword_task):
    """The committed sweep ran on today's trainer: the digest of its short fixed runs
    (:data:`repro.experiments.sweep.DIGEST_RUNS`) is the one the record holds. A change that moves any
    training bit fails here until the sweep is rerun (``python -m repro.bench defaults``). The
    bits are a machine's: on another CPU or library build the digest is not comparable."""
    assert sweep.RECORD.is_file(), f"{sweep.RECORD}: no sweep record; run python -m repro.bench defaults"
    record = json.loads(sweep.RECORD.read_text())
    if record["numerics"] != sweep.numerics_fingerprint():
        pytest.skip("another machine than the sweep's: its trainer digest is not comparable")
    assert sweep.trainer_digest(keyword_task) == record["trainer_digest"], (
        "the trainer's bits moved since the sweep ran: rerun python -m repro.bench defaults")


def test_the_grid_trains_the_sweeps_choice():
    """Every arm's settings in repro/design/__init__.py are the ones the committed sweep chose."""
    from repro import design

    record = json.loads(sweep.RECORD.read_text())
    for arm, settings in record["arms"].items():
        chosen = make_config("mini", settings.split())
        ours = make_config("mini", design.ARMS[arm].overrides())
        assert ours == chosen, (arm, settings)
