"""The experiment design (repro.grid): protocol arms, caption counts, seeds."""

import subprocess
import sys

import pytest

from repro import emoji, grid
from repro.config import MINI_STEPS, make_config
from repro.errors import ReproError


def test_caption_counts_match_the_asset():
    e = emoji.load_emoji()
    for option, n in grid.CAPTION_COUNTS.items():
        assert len(e.english_captions("train", option)[0]) == n, option
    assert grid.CHOSEN_CAPTIONS == make_config("mini").train_captions
    assert grid.OTHER_CAPTIONS != grid.CHOSEN_CAPTIONS
    # every caption option trains for about the same number of optimizer steps
    for option, n in grid.CAPTION_COUNTS.items():
        steps = grid.caption_epochs(option) * (n // 128)
        assert abs(steps - MINI_STEPS) <= n // 128, option


def test_protocol_arms_reach_v1_by_config_keys_only():
    base = make_config("mini")
    v1 = make_config("mini", grid.arm_overrides("M3 [v1]", base.epochs))
    assert (v1.train_captions, v1.mask_same_text, v1.emoji_split) == (
        "names+keywords", False, "random")
    assert v1.lambda_tt == 1 and v1.lr == 1e-3 and v1.head_hidden == 512
    assert v1.epochs == round(base.epochs * grid.caption_epochs("names+keywords")
                              / grid.caption_epochs(grid.CHOSEN_CAPTIONS))
    wide = make_config("mini", grid.arm_overrides("PATR [v2, head 1024]", base.epochs))
    assert wide.head_hidden == 1024 and wide.lambda_tt == 0 and wide.mask_same_text
    # a shorter default length scales the protocol runs with it (tests, smoke runs)
    short = make_config("mini", grid.arm_overrides(f"PATR [v2, {grid.OTHER_CAPTIONS}]", 2))
    assert short.epochs == max(1, round(2 * grid.caption_epochs(grid.OTHER_CAPTIONS)
                                        / grid.caption_epochs(grid.CHOSEN_CAPTIONS)))
    # the v2 row of Table 2d is the main grid's own PATR and M3 (not trained twice)
    assert grid.protocol_arm("PATR", "v2") == "PATR"
    assert all(a in grid.ALL_ARMS for a in grid.PROTOCOL_ARMS)


def test_arm_settings_are_valid_configs():
    for arm in grid.ALL_ARMS:
        make_config("mini", grid.arm_overrides(arm, 30))


def test_lambda_arms_use_m3_settings():
    for arm, sets in grid.LAMBDA_ARMS.items():
        assert sets[:len(grid.ARMS["M3"])] == grid.ARMS["M3"]
        assert make_config("mini", sets).lambda_tt == grid.LAMBDAS[arm]


@pytest.mark.parametrize("argv, words", [
    (["train", "--seed", "-1", "--out", "x"], "seed=-1"),
    (["reproduce", "--seeds", "-1", "--out", "x", "--runs", "y"], "seed=-1"),
])
def test_negative_seeds_are_one_line_errors(tmp_path, argv, words):
    out = subprocess.run([sys.executable, "-m", "repro", *argv], capture_output=True, text=True,
                         cwd=tmp_path)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and words in lines[0], out.stderr


def test_seed_check_in_config():
    with pytest.raises(ReproError, match="between 0 and 2\\*\\*32 - 1"):
        make_config("mini", seed=2**32)


def test_jobs_2_gives_the_bits_of_jobs_1(tmp_path):
    """Two short arms trained in two worker processes equal the same arms trained in turn
    (same thread count): metrics.json and the best model byte for byte."""
    from repro.reproduce import run_grid

    sets = ("epochs=1", "threads=1", "batch_size=256")
    grids = {j: run_grid("mini", tmp_path / f"jobs{j}", seeds=(0,), arms=("PATR", "M3"),
                         towers=("muse",), sets=sets, log=lambda *_: None, jobs=j)
             for j in (1, 2)}
    for arm in ("PATR", "M3"):
        a, b = (grids[j].run_dirs[("muse", arm, 0)] for j in (1, 2))
        assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes(), arm
        assert (a / "best_model.pt").read_bytes() == (b / "best_model.pt").read_bytes(), arm
    # and the tables and figures written from them
    from repro.tables import write_all

    files = {j: write_all(grids[j], tmp_path / f"tables{j}") for j in (1, 2)}
    assert files[1] == files[2] and "table2_ablation.md" in files[1]
    assert "table5_towers_muse.csv" in files[1] and "figure5_towers.png" in files[1]
    md = (tmp_path / "tables1" / "table5_towers_muse.md").read_text()
    assert "| mUSE (real) | real | no |" in md and "| perturbed mUSE | rotation α=3 | yes |" in md
    assert "Table 5" in (tmp_path / "tables1" / "findings.md").read_text()
    for name in files[1]:
        assert ((tmp_path / "tables1" / name).read_bytes()
                == (tmp_path / "tables2" / name).read_bytes()), name
    with pytest.raises(ReproError, match="--jobs 0"):
        run_grid("mini", tmp_path / "x", seeds=(0,), arms=("PATR",), jobs=0)
