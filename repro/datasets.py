"""Torch views of the data: the image transforms of both profiles and a file dataset.

``paper``: image files through the ResNet ImageNet transform (deterministic: no random crop).
``mini``: the 1,849 emoji images live in one in-memory tensor (:func:`mini_images_to_tensor`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from repro.errors import ReproError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def paper_transform():
    """ResNet ImageNet evaluation transform: resize 256, centre crop 224, normalise."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def mini_images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 64, 64, 3) -> float32 (N, 3, 64, 64) in [-1, 1] (the ``mini`` transform)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


class ImageFileDataset(Dataset):
    """Images read from files in a fixed order; item i is (transformed image, i)."""

    def __init__(self, paths: list[Path], transform):
        self.paths = [Path(p) for p in paths]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image

        try:
            with Image.open(self.paths[i]) as im:
                return self.transform(im.convert("RGB")), i
        except (FileNotFoundError, OSError) as exc:
            raise ReproError(f"{self.paths[i]}: cannot read image ({exc})") from None
