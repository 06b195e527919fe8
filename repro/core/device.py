"""Where a run computes: the device a config's ``device`` key names."""

from __future__ import annotations

import torch

from repro.core.errors import ReproError


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else the CPU; ``cpu`` / ``cuda`` as asked (a one-line
    error when CUDA is asked for and absent)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ReproError("--set device=cuda: no CUDA device is available here (use auto or cpu)")
    return torch.device(name)
