"""A run's training state: where it stands after its last finished epoch."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class TrainState:
    """Where a run stands after its last finished epoch: what :func:`train` returns, and what
    ``checkpoint.pt`` keeps (as the plain dict of :meth:`to_dict`, keys in this order).
    The trainer (:mod:`repro.training.trainer`) updates it; evaluation reads it.

    * ``epoch``: epochs finished (0 before the first).
    * ``best_epoch``: the finished epoch with the highest English-validation R-sum, the one
      evaluated (0: none yet).
    * ``best_score``: that epoch's R-sum (R@1 + R@5 + R@10 of both directions, in percent,
      so 0 to 600; -1.0 before the first epoch).
    * ``best_model``: that epoch's parameters, a copy on the CPU (None before the first epoch).
    * ``log``: one dict of statistics per finished epoch, unrounded (``log.jsonl`` rounds them).
    * ``step``: optimizer steps so far (one per batch).
    * ``recent``: the gaps cos(t, v+) - cos(t, hardest v-) of the last
      :data:`repro.config.PLATEAU_WINDOW` batches, oldest first (the plateau rule's window).
    * ``escape_step``: the step at which the run left the loss plateau; None while on it.
    """

    epoch: int = 0
    best_epoch: int = 0
    best_score: float = -1.0
    best_model: dict | None = None
    log: list = field(default_factory=list)
    step: int = 0
    recent: list = field(default_factory=list)
    escape_step: int | None = None

    def to_dict(self) -> dict:
        """The checkpoint's form: a dict of the fields (the objects themselves, not copies)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, saved: dict) -> TrainState:
        """A checkpoint's state dict; a key it lacks takes its start value."""
        return cls(**{f.name: saved[f.name] for f in dataclasses.fields(cls) if f.name in saved})
