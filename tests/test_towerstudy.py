"""Table 5 (evaluation only): with beta = 0 and alpha = 0 it reproduces the grid's own
numbers exactly; perturbations hurt transfer, centering undoes an offset."""

import numpy as np
import pytest

from repro import towerstudy
from repro.data import LANGS
from repro.reproduce import run_grid

NON_EN = [l for l in LANGS if l != "en"]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    sets = ("epochs=2", "batch_size=256")
    return run_grid("mini", tmp_path_factory.mktemp("runs"), seeds=(0, 1), arms=("PATR", "M3"),
                    towers=("muse",), sets=sets, log=lambda *_: None)


def test_zero_perturbation_reproduces_the_grid_exactly(grid):
    rows = towerstudy.study(grid, "muse")
    real = next(r for r in rows if r["kind"] == "real" and not r["centered"])
    for arm in ("PATR", "M3"):
        for k in ("R@1", "R@10"):
            expected = [float(np.mean([m["retrieval"][l][f"t2i_{k}"] for l in NON_EN]))
                        for m in grid.runs("muse", arm)]
            assert real[arm][k] == expected, (arm, k)
    raw = float(np.mean([grid.runs("muse", "M3")[0]["alignment_test"][l]["raw_R@1"]
                         for l in NON_EN]))
    assert real["alignment_R@1"] == pytest.approx(raw, abs=1e-9)   # Table 4b's raw column
    # every condition comes with and without centering (the mini task has unlabeled names)
    assert len(rows) == 2 * len(towerstudy.conditions())
    by = {(r["condition"], r["centered"]): r for r in rows}
    big = f"offset β={towerstudy.BETAS[-1]:g}"
    assert by[(big, False)]["alignment_R@1"] < real["alignment_R@1"] - 10
    # centering removes a pure offset: the centered offset rows equal the centered real row
    for b in towerstudy.BETAS:
        c = by[(f"offset β={b:g}", True)]
        assert c["alignment_R@1"] == pytest.approx(by[("real", True)]["alignment_R@1"], abs=1e-9)
        assert c["M3"]["R@1"] == pytest.approx(by[("real", True)]["M3"]["R@1"], abs=1e-9)
