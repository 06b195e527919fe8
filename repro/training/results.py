"""A finished run's result: what ``metrics.json`` holds, as one typed record.

Every module reads a run's numbers through :class:`RunResult` (``r.retrieval["de"]["t2i_R@1"]``),
never through string keys of a loose dict; a ``metrics.json`` whose keys are not exactly these
fields is refused with a one-line error naming the file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path

from repro.core.errors import ReproError
from repro.core.fileio import atomic_write_bytes


@dataclass(frozen=True)
class RunResult:
    """One run (config, seed), evaluated at its best English-validation epoch.

    Metric sections map language -> metric -> value: recall and tagging in %, cosines in
    [-1, 1]. ``retrieval`` holds ``t2i_R@k`` / ``i2t_R@k``; ``tagging`` P@5 and mAP (empty when
    the task has no tag vocabularies); ``alignment_*`` the text towers' caption-to-English
    recall raw and after the text head (empty when not computed); ``summary`` the flat
    ``metric_lang`` view the CLI prints.
    """

    metrics_version: int
    profile: str
    arm: str
    seed: int
    text_tower: str
    image_backbone: str
    image_weights: str
    device: str
    best_epoch: int            # 1-based: the epoch whose model is evaluated
    epochs: int                # epochs trained
    steps: int                 # optimizer steps trained
    escape_step: int | None    # the step the run left the loss plateau; None: never
    ended_on_plateau: bool
    on_plateau_at_best_epoch: bool
    last_epochs: list          # the log of the last three epochs (no timings)
    retrieval: dict
    tagging: dict
    alignment_test: dict
    alignment_xtd10: dict
    text_clusters: dict        # same / diff / gap / separation of the test captions' embeddings
    notes: dict                # topic (tasks.NOTE_TOPICS) -> sentences: what was left out, and why
    data_sha256: dict          # the training data's checksums
    numerics: dict             # the machine's numerics record (repro.core.numerics.record)
    summary: dict

    @classmethod
    def from_dict(cls, values: dict, where: str = "metrics.json") -> RunResult:
        names = {f.name for f in fields(cls)}
        missing, unknown = sorted(names - set(values)), sorted(set(values) - names)
        if missing or unknown:
            raise ReproError(f"{where}: not a run result of this version (missing "
                             f"{', '.join(missing) or 'nothing'}; unknown {', '.join(unknown) or 'nothing'})")
        return cls(**values)

    @classmethod
    def read(cls, path: Path) -> RunResult:
        """The result a ``metrics.json`` holds; a one-line error when it is not one."""
        return cls.from_dict(cls.read_values(path), str(path))

    @classmethod
    def read_bytes(cls, data: bytes, path: Path) -> RunResult:
        """The result that the bytes of ``path`` hold."""
        return cls.from_dict(cls.values_of(data, path), str(path))

    @staticmethod
    def read_values(path: Path) -> dict:
        """The JSON object a ``metrics.json`` holds, its fields not checked yet (a reader may
        look at its ``metrics_version`` first); a one-line error naming the file when it
        cannot be read or is not a JSON object (cut, edited)."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ReproError(f"{path}: unreadable run result ({type(exc).__name__})") from None
        return RunResult.values_of(data, path)

    @staticmethod
    def values_of(data: bytes, path: Path) -> dict:
        """The JSON object of the bytes of ``path`` (see :meth:`read_values`)."""
        try:
            values = json.loads(data.decode("utf-8"))
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise ReproError(f"{path}: unreadable run result ({type(exc).__name__}: {exc}; "
                             "cut or edited?)") from None
        if not isinstance(values, dict):
            raise ReproError(f"{path}: not a run result (a JSON object is expected)")
        return values

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> bytes:
        """The bytes of ``metrics.json``: sorted keys, one space of indent (bit-reproducible)."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=True).encode()

    def write(self, path: Path) -> None:
        atomic_write_bytes(path, self.to_json())
