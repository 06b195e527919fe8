"""Progress a person can follow in a terminal and in a log file alike: plain lines such as
``muse text features: 4,096 of 17,000 texts (24%), 12 s``, at most one every ``every_s``
seconds, so a long one-time computation is never silent and a log never floods."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

#: Seconds between two progress lines.
EVERY_S = 10.0


def batch_starts(total: int, size: int, what: str, unit: str, every_s: float | None = None,
                 log=None, clock=time.monotonic) -> Iterator[int]:
    """Yield ``0, size, 2 * size, ...`` below ``total`` (the start of each batch), and say how
    far the work has come (``what``: the set; ``unit``: its items) once a batch ends at least
    ``every_s`` (default :data:`EVERY_S`) seconds after the previous line. ``log``: default a
    line on stderr."""
    every_s = EVERY_S if every_s is None else every_s
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    t0 = last = clock()
    for start in range(0, total, size):
        yield start
        now = clock()
        done = min(start + size, total)
        if now - last >= every_s and done < total:
            log(f"{what}: {done:,} of {total:,} {unit} ({100 * done // total}%), "
                f"{now - t0:.0f} s")
            last = now
