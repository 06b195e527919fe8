"""Progress lines of long one-time work (:mod:`repro.core.progress`): plain words, how many of
how many, at most one per interval, none after the last batch (the caller says it is done)."""

import numpy as np

from repro.config import make_config
from repro.core import parallel, progress
from repro.core.progress import batch_starts


def test_batches_cover_the_work_and_lines_say_how_far_it_has_come():
    times = iter([0.0, 4.0, 11.0, 15.0, 22.0, 30.0])  # t0, then after each of 5 batches
    lines = []
    starts = list(batch_starts(1000, 256, "muse text features", "texts", every_s=10,
                               log=lines.append, clock=lambda: next(times)))
    assert starts == [0, 256, 512, 768]  # the last batch is the 232 left
    # 4 s: too soon; 11 s: 512 of 1000 done; 15 s: too soon after 11; 22 s: 1000 reached, no line
    assert lines == ["muse text features: 512 of 1,000 texts (51%), 11 s"]


def test_no_line_when_the_work_is_quick():
    lines = []
    assert list(batch_starts(10, 4, "x", "items", log=lines.append)) == [0, 4, 8]
    assert lines == []


def test_map_ordered_ticks_once_per_result_in_order():
    ticks = []
    out = parallel.map_ordered(None, lambda a, b: a * b, [(1, 2), (3, 4), (5, 6)],
                               tick=lambda: ticks.append(len(ticks)))
    assert out == [2, 12, 30] and ticks == [0, 1, 2]


def test_text_features_say_how_many_texts_of_how_many(capsys, monkeypatch):
    """The progress of a text set counts its chunks of 256 texts (one tower batch each)."""
    from repro.training.tasks import _Encoder

    class Tower:
        dim = 4

        def encode(self, texts):
            return np.zeros((len(texts), self.dim), dtype=np.float32)

    monkeypatch.setattr(progress, "EVERY_S", 0.0)  # a line after every chunk but the last
    feats = _Encoder(make_config("mini"), tower=Tower())._compute([f"t{i}" for i in range(600)])
    assert feats.shape == (600, 4)
    lines = [line.split(", ")[0] for line in capsys.readouterr().err.splitlines()]
    assert lines == ["muse text features: 256 of 600 texts (42%)",
                     "muse text features: 512 of 600 texts (85%)"]
