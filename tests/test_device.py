"""Device placement (issue: paper profile on one GPU): CPU bits unchanged, clear errors, the
COCO-scale simulation runs through the real trainer and evaluator."""

import json
import subprocess
import sys

import pytest
import torch

from conftest import call_main

from repro.config import make_config
from repro.core.device import resolve_device
from repro.core.errors import ReproError
from repro.training import trainer

FAST = ["epochs=2", "batch_size=256"]


def test_auto_is_cpu_here_and_cpu_equals_auto(tmp_path, mini_task):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: auto means cuda")
    assert resolve_device("auto") == torch.device("cpu")
    a = trainer.train_and_evaluate(make_config("mini", FAST + ["device=auto"]), tmp_path / "a",
                                   task=mini_task)
    b = trainer.train_and_evaluate(make_config("mini", FAST + ["device=cpu"]), tmp_path / "b",
                                   task=mini_task)
    assert a.device == b.device == "cpu"
    assert a.retrieval == b.retrieval and a.last_epochs == b.last_epochs
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
    assert out.returncode == 2 and out.stderr.strip().splitlines()[1:] == [
        "error: --set device=cuda: no CUDA device is available here (use auto or cpu)"]


def _bench(argv: list[str], capsys):
    """``python -m repro.bench ARGV`` in this test process."""
    from repro.bench import suite

    return call_main(suite.main, argv, capsys)


def test_paper_scale_bench_runs_and_projects(capsys):
    """The simulation at a thousandth of COCO (per-step shapes unchanged): it trains, selects,
    evaluates and prints an honest projection."""
    out = _bench(["paper-scale", "--steps", "2", "--scale", "0.001", "--images", "4",
                  "--captions", "16", "--json"], capsys)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "projection on cpu" in out.stdout and "plus the one-time extraction" in out.stdout
    assert "ResNet-152 features of 123,287 images" in out.stdout
    rows = json.loads(out.stdout[out.stdout.index("[\n"):])
    towers = {r["tower"]: r for r in rows}
    assert set(towers) == {"mbert", "muse", "extraction", "projection"}
    assert towers["mbert"]["text_dim"] == 768 and towers["muse"]["text_dim"] == 512
    assert towers["muse"]["steps_per_epoch"] == 591_753 // 256 and towers["muse"]["step_ms"] > 0
    x = towers["extraction"]
    assert x["resnet152_images_per_s"] > 0 and x["muse_captions_per_s"] > 0
    assert x["mbert_captions_per_s"] > 0 and x["jpeg_kB_mean"] > 20
    p = towers["projection"]
    assert p["reproduce_grid_min"] > p["main_grid_min"] > 0
    assert p["first_reproduce_min"] == pytest.approx(p["reproduce_grid_min"] + p["one_time_min"])
    assert p["one_time_min"] == pytest.approx(p["resnet152_features_min"]
                                              + p["muse_features_min"] + p["mbert_features_min"])


def test_coco_like_inputs_have_the_real_shapes(tmp_path):
    from PIL import Image

    from repro.bench import scale

    caps = scale.coco_like_captions(2000)
    words = [len(c.split()) for c in caps]
    assert 10 <= sum(words) / len(words) <= 11 and min(words) == 8
    assert scale.coco_like_captions(5) == scale.coco_like_captions(5)  # seeded
    paths = scale.coco_like_jpegs(tmp_path, 2)
    with Image.open(paths[0]) as im:
        assert im.size == (640, 480) and im.format == "JPEG"


def test_gpu_check_without_a_gpu_is_one_line_and_exit_0(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    out = _bench(["gpu-check", "--out", str(tmp_path / "g.json")], capsys)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines() == [
        "gpu-check: no CUDA GPU on this machine (torch.cuda.is_available() is False); nothing run"]
    assert not (tmp_path / "g.json").exists()


def test_gpu_check_end_to_end_on_a_tiny_forced_configuration(tmp_path, capsys):
    out = _bench(["gpu-check", "--device", "cpu", "--tiny", "--out", str(tmp_path / "g.json")],
                 capsys)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "g.json").read_text())
    assert report["versions"]["torch"] == torch.__version__ and report["tiny"]
    # on the CPU, the same seed twice and "device vs CPU" are both bit-identical
    assert report["same_seed_twice"]["bit_identical"] is True
    assert report["device_vs_cpu"]["max_abs_weight_diff"] == 0.0
    assert {r["tower"] for r in report["paper_scale"]} == {"mbert", "muse"}
    assert report["extraction"]["resnet152_images_per_s"] > 0
    p = report["projection"]
    assert p["first_reproduce_min"] > p["reproduce_grid_min"] > p["main_grid_min"] > 0
    assert "gpu-check: same seed twice bit-identical: True" in out.stdout
