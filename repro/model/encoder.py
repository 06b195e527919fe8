"""The trainable dual encoder: a head on each frozen tower's features, one shared space.

The text side takes frozen text-tower features (:mod:`repro.towers.text`), the image side frozen
backbone features (:mod:`repro.towers.backbones`); both end in L2 normalisation, so scores are
cosines.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def head(in_dim: int, hidden: int, out_dim: int,
         generator: torch.Generator | None = None) -> nn.Module:
    """The paper's 2-layer head: Linear, ReLU, Linear. With ``generator`` its weights are
    drawn from it (PyTorch's default Linear init: Kaiming-uniform weights, uniform biases in
    +-1/sqrt(fan_in)) instead of the global RNG."""
    net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))
    if generator is not None:
        for layer in (net[0], net[2]):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(layer.in_features)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return net


#: Each head draws its initial weights from a generator of its own, seeded from the run's seed,
#: so every arm with the same seed starts its image head from the same weights, whether it has
#: a text head or not (the pairs of the paired tables share what they can).
HEAD_SEED_OFFSET = {"text": 999_983, "image": 999_979}


def head_generator(seed: int, side: str) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + HEAD_SEED_OFFSET[side])


class DualEncoder(nn.Module):
    """Trainable parts of the dual encoder, on top of frozen tower features.

    text:  tower features (N, text_dim) -> text head (or identity) -> L2 norm -> (N, D)
    image: frozen backbone features (N, image_feat_dim) -> image head -> L2 norm -> (N, D)
    D = ``embed_dim``, or ``text_dim`` when ``text_head="none"`` (the tower's own space).
    """

    def __init__(self, cfg, text_dim: int, image_feat_dim: int):
        super().__init__()
        out_dim = text_dim if cfg.text_head == "none" else cfg.embed_dim
        self.text_head = (nn.Identity() if cfg.text_head == "none"
                          else head(text_dim, cfg.head_hidden, out_dim,
                                    head_generator(cfg.seed, "text")))
        self.image_head = head(image_feat_dim, cfg.head_hidden, out_dim,
                               head_generator(cfg.seed, "image"))
        self.out_dim = out_dim

    def encode_text(self, feats: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_head(feats), dim=-1)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_head(x), dim=-1)

    def has_trainable_text_side(self) -> bool:
        return any(p.requires_grad for p in self.text_head.parameters())
