"""Paired statistics over seeds (SciPy): is a per-seed difference different from zero?

Two runs with the same seed share their initialisation and batches, so a comparison of two
variants is a set of n paired differences d_1..d_n. One statistical model gives each verdict:
the paired (one-sample) t-test of the mean difference. We report

* the mean and its 95% t-interval, mean ± t_{0.975, n-1} * sd / sqrt(n);
* the two-sided t-test p-value of the same model (the interval excludes 0 exactly when p < 0.05);
* the Holm-adjusted p-value over the table's family of verdicts (:func:`holm`), which decides the
  verdict: 'higher' / 'lower' only when it is below ``ALPHA``;
* beside it, the distribution-free two-sided sign-flip (permutation) p-value: exact over all 2^n
  sign patterns up to ``EXACT_SIGN_FLIP_MAX_N`` seeds, a seeded Monte Carlo estimate beyond.
  With n = 5 its smallest value is 2/32 = 0.0625, so it can support but never alone establish a
  difference at 5%.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np

ALPHA = 0.05
LEVEL = 0.95
#: Up to this many seeds the sign-flip p enumerates all 2^n patterns; beyond, Monte Carlo.
EXACT_SIGN_FLIP_MAX_N = 16
SIGN_FLIP_DRAWS = 100_000
SIGN_FLIP_SEED = 0
VERDICTS = ("higher", "lower", "no difference shown")


def t_interval(diffs, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high) of the ``level`` t-interval of the mean of ``diffs`` (n >= 2)."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        raise ValueError("a t-interval needs at least 2 paired differences")
    mean = float(d.mean())
    half = float(stats.t.ppf(0.5 + level / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size))
    return mean, mean - half, mean + half


def t_test_p(mean: float, sem: float, n: int) -> float:
    """Two-sided p-value of the one-sample t-test of H0: the mean is 0, from the sample mean,
    its standard error ``sem`` = sd / sqrt(n) and n (n - 1 degrees of freedom). A zero spread
    gives p = 0 for a non-zero mean and p = 1 for a zero mean."""
    from scipy import stats

    if sem == 0:
        return 1.0 if mean == 0 else 0.0
    return float(2 * stats.t.sf(abs(mean) / sem, n - 1))


def t_p_from_interval(mean: float, low: float, high: float, n: int,
                      level: float = LEVEL) -> float:
    """The t-test p-value implied by a printed ``level`` t-interval [low, high] around ``mean``
    over n paired differences (the inverse of :func:`t_interval`)."""
    from scipy import stats

    crit = float(stats.t.ppf(0.5 + level / 2, n - 1))
    return t_test_p(mean, (high - low) / 2 / crit, n)


def sign_flip_p(diffs, exact_max_n: int = EXACT_SIGN_FLIP_MAX_N,
                draws: int = SIGN_FLIP_DRAWS, seed: int = SIGN_FLIP_SEED) -> float:
    """Two-sided sign-flip p-value of H0: the differences are symmetric around 0.

    Exact (the share of all 2^n sign patterns whose |mean| reaches the observed one) for
    n <= ``exact_max_n``; beyond, ``draws`` seeded random patterns and the usual (count + 1) /
    (draws + 1) estimate, which never reports 0."""
    d = np.asarray(diffs, dtype=float)
    observed = abs(d.mean())
    if d.size <= exact_max_n:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
        means = np.abs((signs * d).mean(axis=1))
        # a tiny tolerance so that patterns equal to the observed one count despite rounding
        return float(np.mean(means >= observed - 1e-12))
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, draws, 10_000):
        signs = rng.choice((1.0, -1.0), size=(min(10_000, draws - start), d.size))
        hits += int(np.sum(np.abs((signs * d).mean(axis=1)) >= observed - 1e-12))
    return (hits + 1) / (draws + 1)


def holm(pvalues) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (same order as given): the i-th
    smallest p becomes max over j <= i of min(1, (m - j + 1) * p_(j))."""
    p = [float(x) for x in pvalues]
    m = len(p)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda k: p[k])):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def verdict_of(mean: float, p_adjusted: float, alpha: float = ALPHA) -> str:
    """'higher' / 'lower' when the (adjusted) p-value is below alpha, else no difference."""
    if p_adjusted < alpha:
        return "higher" if mean > 0 else "lower"
    return "no difference shown"


@dataclass(frozen=True)
class Paired:
    """Summary of n paired per-seed differences. ``p_holm`` is the p-value adjusted over the
    family the cell is reported in (a family of one until :func:`adjust_family` runs)."""

    n: int
    mean: float
    low: float
    high: float
    p_t: float
    p_holm: float
    p_sign_flip: float
    sign_flip_exact: bool

    @property
    def verdict(self) -> str:
        return verdict_of(self.mean, self.p_holm)

    def text(self) -> str:
        """'+1.2 [95% CI −0.3, +2.7], t-test p = 0.19 (Holm 0.57), sign-flip p = 0.25: **no
        difference shown**' for findings."""
        return (f"{self.mean:+.1f} [95% CI {self.low:+.1f}, {self.high:+.1f}], t-test p = "
                f"{self.p_t:.2g} (Holm {self.p_holm:.2g}), sign-flip p = {self.p_sign_flip:.3g}: "
                f"**{self.verdict}**")


#: The fewest paired differences (distinct seeds) a :class:`Paired` summary is made of: one
#: difference has no spread, so no interval, no p-value and no verdict.
MIN_PAIRED_N = 2


def paired_summary(diffs, level: float = LEVEL) -> Paired:
    """The :class:`Paired` summary of per-seed differences, as a family of one. Fewer than
    :data:`MIN_PAIRED_N` differences are a ValueError: a table prints "n/a" for them (its
    caller checks), so no p-value or verdict ever comes from a single replicate."""
    d = np.asarray(diffs, dtype=float)
    if d.size < MIN_PAIRED_N:
        raise ValueError(f"a paired summary needs at least {MIN_PAIRED_N} per-seed differences "
                         f"(one per distinct seed), got {d.size}: one replicate has no spread, "
                         "so no p-value and no verdict")
    mean, low, high = t_interval(d, level)
    p = t_test_p(mean, float(d.std(ddof=1)) / math.sqrt(d.size), d.size)
    return Paired(int(d.size), mean, low, high, p, p, sign_flip_p(d),
                  d.size <= EXACT_SIGN_FLIP_MAX_N)


def adjust_family(cells: list[Paired]) -> list[Paired]:
    """The cells with ``p_holm`` adjusted over all of them (Holm), same order."""
    return [replace(c, p_holm=a) for c, a in zip(cells, holm([c.p_t for c in cells]))]


#: Resamples of :func:`bootstrap_choice` and their seed (fixed: the shares are reproducible).
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 0


def bootstrap_choice(per_item: dict, draws: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED,
                     level: float = LEVEL) -> dict:
    """How stable is the choice of the setting with the highest mean score?

    ``per_item``: setting -> (n_seeds, n_items) array, each run's score as a mean over
    validation items (row s: seed s; every setting the same seeds and items, in the same
    order). Each of ``draws`` resamples draws n_seeds seeds and n_items items with
    replacement, the same for every setting (paired), and takes the setting with the highest
    mean (ties: the first in ``per_item``'s order). Returns setting -> {"mean", "win_share"
    (the share of resamples it wins), "low", "high" (the ``level`` percentile interval of
    its resampled mean)}.
    """
    names = list(per_item)
    data = np.stack([np.asarray(per_item[n], dtype=float) for n in names])  # (S, seeds, items)
    _, n_seeds, n_items = data.shape
    rng = np.random.default_rng(seed)
    means = np.empty((draws, len(names)))
    for b in range(draws):
        s = rng.integers(0, n_seeds, n_seeds)
        i = rng.integers(0, n_items, n_items)
        means[b] = data[:, s][:, :, i].mean(axis=(1, 2))
    wins = np.bincount(means.argmax(axis=1), minlength=len(names)) / draws
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return {n: {"mean": float(data[k].mean()), "win_share": float(wins[k]),
                "low": float(lo[k]), "high": float(hi[k])} for k, n in enumerate(names)}


def pearson_interval(x, y, level: float = LEVEL) -> tuple[float, float, float]:
    """Pearson's r of paired values and its ``level`` interval by Fisher's z transform
    (r, low, high); needs at least 4 pairs and some spread in both."""
    from scipy import stats

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 4 or x.size != y.size:
        raise ValueError("a correlation interval needs at least 4 pairs of values")
    r = float(np.corrcoef(x, y)[0, 1])
    half = float(stats.norm.ppf(0.5 + level / 2)) / math.sqrt(x.size - 3)
    z = math.atanh(min(max(r, -1 + 1e-12), 1 - 1e-12))
    return r, math.tanh(z - half), math.tanh(z + half)
