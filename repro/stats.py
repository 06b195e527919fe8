"""Paired statistics over seeds (SciPy): is a per-seed difference different from zero?

Two runs with the same seed share their initialisation and batches, so a comparison of two
variants is a set of n paired differences d_1..d_n. We report

* the mean and a 95% t-interval, mean ± t_{0.975, n-1} * sd / sqrt(n) (the verdict rule: a
  difference is claimed only when this interval excludes 0);
* the exact two-sided sign-flip (permutation) p-value: the share of the 2^n sign patterns whose
  |mean| is at least the observed one. With n = 5 its smallest value is 2/32 = 0.0625, so it can
  support but never alone establish a difference at 5%.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def t_interval(diffs, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of the ``level`` t-interval of the mean of ``diffs`` (n >= 2)."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        raise ValueError("a t-interval needs at least 2 paired differences")
    mean = float(d.mean())
    half = float(stats.t.ppf(0.5 + level / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size))
    return mean, mean - half, mean + half


def sign_flip_p(diffs) -> float:
    """Exact two-sided sign-flip p-value of H0: the differences are symmetric around 0."""
    d = np.asarray(diffs, dtype=float)
    observed = abs(d.mean())
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    means = np.abs((signs * d).mean(axis=1))
    # a tiny tolerance so that patterns equal to the observed one count despite rounding
    return float(np.mean(means >= observed - 1e-12))


def paired_summary(diffs, level: float = 0.95) -> dict:
    """Mean, t-interval, sign-flip p and the verdict for paired per-seed differences."""
    mean, low, high = t_interval(diffs, level)
    verdict = "higher" if low > 0 else "lower" if high < 0 else "no difference shown"
    return {"n": len(diffs), "mean": mean, "low": low, "high": high,
            "p_sign_flip": sign_flip_p(diffs), "verdict": verdict}


def format_summary(s: dict) -> str:
    """'+1.2 [−0.3, +2.7], p = 0.19' style text for tables and findings."""
    return (f"{s['mean']:+.1f} [{s['low']:+.1f}, {s['high']:+.1f}], "
            f"p = {s['p_sign_flip']:.3g}")
