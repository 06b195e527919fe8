"""Device placement (issue: paper profile on one GPU): CPU bits unchanged, clear errors, the
COCO-scale simulation runs through the real trainer and evaluator."""

import json
import subprocess
import sys

import pytest
import torch

from repro import trainer
from repro.config import make_config
from repro.errors import ReproError
from repro.model import resolve_device
from repro.tasks import build_task

FAST = ["epochs=2", "batch_size=64"]


@pytest.fixture(scope="module")
def mini_task():
    return build_task(make_config("mini", FAST), with_xtd10=False)


def test_auto_is_cpu_here_and_cpu_equals_auto(tmp_path, mini_task):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: auto means cuda")
    assert resolve_device("auto") == torch.device("cpu")
    a = trainer.train_and_evaluate(make_config("mini", FAST + ["device=auto"]), tmp_path / "a",
                                   task=mini_task)
    b = trainer.train_and_evaluate(make_config("mini", FAST + ["device=cpu"]), tmp_path / "b",
                                   task=mini_task)
    assert a["device"] == b["device"] == "cpu"
    assert a["retrieval"] == b["retrieval"] and a["last_epochs"] == b["last_epochs"]
    ckpt = torch.load(tmp_path / "a/checkpoint.pt", weights_only=False)
    assert all(v.device.type == "cpu" for v in ckpt["model"].values())  # portable checkpoints


def test_cuda_asked_for_but_absent_is_one_line():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ReproError, match="device=cuda: no CUDA device"):
        resolve_device("cuda")
    out = subprocess.run([sys.executable, "-m", "repro", "train", "--out", "/tmp/x-never",
                          "--set", "device=cuda", "--set", "epochs=1"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "error: --set device=cuda: no CUDA device is available here (use auto or cpu)"]


def test_paper_scale_bench_runs_and_projects():
    """The simulation at a thousandth of COCO (per-step shapes unchanged): it trains, selects,
    evaluates and prints an honest projection."""
    out = subprocess.run([sys.executable, "-m", "repro.bench", "paper-scale", "--steps", "2",
                          "--scale", "0.001", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "projection on cpu" in out.stdout and "excludes one-time feature extraction" in out.stdout
    rows = json.loads(out.stdout[out.stdout.index("[\n"):])
    towers = {r["tower"]: r for r in rows}
    assert set(towers) == {"mbert", "muse", "projection"}
    assert towers["mbert"]["text_dim"] == 768 and towers["muse"]["text_dim"] == 512
    assert towers["muse"]["steps_per_epoch"] == 591_753 // 256 and towers["muse"]["step_ms"] > 0
    p = towers["projection"]
    assert p["reproduce_grid_min"] > p["issue_grid_min"] > 0
