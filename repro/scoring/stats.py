"""Paired statistics over seeds and test items (NumPy, SciPy): how large is a difference
between two arms, and, for a declared endpoint only, is it different from zero?

Two runs with the same seed share their initialisation and batches, and both are scored on the
same test items, so a comparison of two arms is an (n_seeds, n_items) matrix D of paired
per-item differences (row s: seed s; column i: test item i, e.g. 100 x [rank <= 10] averaged
over languages). Its mean varies with the seeds and with the items drawn, so every interval
comes from a **crossed bootstrap**: each resample draws n_seeds seeds and n_items items with
replacement (one draw, shared by both arms) and takes the mean of the resampled matrix
(:func:`crossed_means`). We report

* for every paired cell an :class:`Estimate`: the mean and its 95% percentile interval
  (:func:`percentile_interval`), and no verdict;
* for the declared endpoints only (:data:`repro.design.ENDPOINTS`), a :class:`Verdict`: the
  bootstrap p-value (:func:`bootstrap_p`), Holm's step-down over the endpoints
  (:func:`holm_levels`), and the interval at the level Holm tested the endpoint at. The p-value
  and the interval are two readings of the same resamples: p <= a exactly when the 1 - a
  interval excludes 0, so the printed interval excludes 0 exactly when the verdict is
  'higher' or 'lower'.

No permutation (sign-flip) test is reported: it is only worth printing where its smallest
attainable p is below its threshold, and the seeds alone are not the replicate of a crossed
design.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
LEVEL = 0.95
VERDICTS = ("higher", "lower", "no difference shown")
#: Resamples of a cell's interval, and of an endpoint's (its Holm level reaches alpha / m).
ESTIMATE_DRAWS = 2000
ENDPOINT_DRAWS = 20000
#: Every bootstrap of the report draws from this seed (common random numbers across cells).
CROSSED_SEED = 0


def t_interval(diffs, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high) of the ``level`` t-interval of the mean of ``diffs`` (n >= 2)."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        raise ValueError("a t-interval needs at least 2 paired differences")
    mean = float(d.mean())
    half = float(stats.t.ppf(0.5 + level / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size))
    return mean, mean - half, mean + half


def _counts(rng, draws: int, n: int) -> np.ndarray:
    """(draws, n) float64: how often each of n units is drawn in each of ``draws`` resamples
    of n units with replacement (indices drawn with ``rng.integers``)."""
    idx = rng.integers(0, n, size=(draws, n))
    flat = (idx + n * np.arange(draws)[:, None]).ravel()
    return np.bincount(flat, minlength=draws * n).reshape(draws, n).astype(float)


def crossed_means(diffs, draws: int = ESTIMATE_DRAWS, seed: int = CROSSED_SEED,
                  items: bool = True) -> np.ndarray:
    """The means of ``draws`` crossed bootstrap resamples of ``diffs``, (n_seeds, n_items):
    resample b draws n_seeds seed indices, then n_items item indices, with replacement
    (``numpy.random.default_rng(seed).integers``, in that order per resample block) and
    averages ``diffs[seeds][:, items]``. ``items=False`` keeps every item (seeds only).
    Returns (draws,) float64. Computed as w_b' D v_b / (n_seeds n_items) from the draw counts
    w_b, v_b, with einsum (no BLAS: the same bits on any core count and thread setting)."""
    d = np.asarray(diffs, dtype=float)
    if d.ndim != 2 or d.shape[0] < 2 or d.shape[1] < 1:
        raise ValueError(f"a crossed bootstrap needs an (n_seeds >= 2, n_items) matrix, got "
                         f"shape {d.shape}")
    n, m = d.shape
    rng = np.random.default_rng(seed)
    w = _counts(rng, draws, n)
    v = _counts(rng, draws, m) if items else np.ones((draws, m))
    resampled = np.einsum("bs,si->bi", w, d, optimize=False)  # (draws, n_items)
    return np.einsum("bi,bi->b", resampled, v, optimize=False) / (n * m)


def _order_k(draws: int, a: float) -> int:
    """The order statistic (1-based) of a two-sided 1 - a percentile interval from ``draws``
    resamples: floor(a (draws + 1) / 2); 0 means the interval is unbounded on that side."""
    return int(math.floor(a * (draws + 1) / 2 + 1e-9))


def percentile_interval(means, level: float = LEVEL) -> tuple[float, float]:
    """(low, high): the k-th smallest and k-th largest resampled mean, k = :func:`_order_k`
    (-inf / +inf when k is 0). Chosen so that the interval excludes 0 exactly when
    :func:`bootstrap_p` <= 1 - ``level``."""
    x = np.sort(np.asarray(means, dtype=float))
    k = _order_k(x.size, 1 - level)
    if k == 0:
        return -math.inf, math.inf
    return float(x[k - 1]), float(x[x.size - k])


def bootstrap_p(means) -> float:
    """Two-sided bootstrap p-value of H0: the mean difference is 0, from resampled means:
    min(1, 2 min(#{m <= 0} + 1, #{m >= 0} + 1) / (draws + 1)) (never 0)."""
    x = np.asarray(means, dtype=float)
    below, above = int(np.sum(x <= 0)), int(np.sum(x >= 0))
    return min(1.0, 2 * (min(below, above) + 1) / (x.size + 1))


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


def holm_levels(pvalues, alpha: float = ALPHA) -> list[float]:
    """The level a_i each hypothesis is tested at by Holm's step-down (same order as given):
    the j-th smallest p is tested at alpha / (m - j + 1) while every smaller p was rejected;
    from the first p not rejected on, every remaining hypothesis keeps that step's level.
    A hypothesis is rejected exactly when its p <= a_i, and exactly when its Holm-adjusted p
    (:func:`holm`) <= alpha."""
    p = [float(x) for x in pvalues]
    m = len(p)
    levels = [0.0] * m
    stopped = None
    for rank, i in enumerate(sorted(range(m), key=lambda k: p[k])):
        step = alpha / (m - rank)
        if stopped is None and p[i] > step:
            stopped = step
        levels[i] = step if stopped is None else stopped
    return levels


@dataclass(frozen=True)
class Estimate:
    """A paired difference: its mean over n seeds (and ``items`` test items) and its 95%
    interval: the crossed seed x item bootstrap's percentile interval when ``items`` > 0,
    else the t-interval over seeds. No p-value and no verdict: those belong to endpoints."""

    n: int
    items: int
    mean: float
    low: float
    high: float

    def text(self) -> str:
        """'+1.2 [95% CI −0.3, +2.7], 20 seeds × 500 items' for findings."""
        over = f"{self.n} seeds × {self.items} items" if self.items else f"{self.n} seeds"
        return f"{self.mean:+.1f} [95% CI {self.low:+.1f}, {self.high:+.1f}], {over}"


#: The fewest paired differences (distinct seeds) an :class:`Estimate` is made of: one
#: difference has no spread, so no interval.
MIN_PAIRED_N = 2


def crossed_estimate(diffs, draws: int = ESTIMATE_DRAWS, level: float = LEVEL) -> Estimate:
    """The :class:`Estimate` of an (n_seeds, n_items) matrix of paired differences, with its
    crossed bootstrap interval."""
    d = np.asarray(diffs, dtype=float)
    low, high = percentile_interval(crossed_means(d, draws), level)
    return Estimate(int(d.shape[0]), int(d.shape[1]), float(d.mean()), low, high)


def seed_estimate(diffs, level: float = LEVEL) -> Estimate:
    """The :class:`Estimate` of per-seed differences (no per-item data): the t-interval.
    Fewer than :data:`MIN_PAIRED_N` is a ValueError (a table prints "n/a")."""
    d = np.asarray(diffs, dtype=float)
    if d.size < MIN_PAIRED_N:
        raise ValueError(f"an estimate needs at least {MIN_PAIRED_N} per-seed differences "
                         f"(one per distinct seed), got {d.size}: one replicate has no spread")
    mean, low, high = t_interval(d, level)
    return Estimate(int(d.size), 0, mean, low, high)


@dataclass(frozen=True)
class Verdict:
    """A declared endpoint's test: the crossed bootstrap p, its Holm adjustment over the
    endpoints, the level Holm tested it at, the interval at that level (1 - level), and the
    word that follows from that interval."""

    p: float
    p_holm: float
    level: float
    low: float
    high: float

    @property
    def word(self) -> str:
        return verdict_word(self.low, self.high)


def verdict_word(low: float, high: float) -> str:
    """'higher' / 'lower' when the interval excludes 0, else 'no difference shown'."""
    if low > 0:
        return "higher"
    if high < 0:
        return "lower"
    return "no difference shown"


def endpoint_verdicts(resampled: list, alpha: float = ALPHA) -> list[Verdict]:
    """The :class:`Verdict` of each endpoint of a family from its resampled means (same order):
    p from :func:`bootstrap_p`, Holm over the family, the interval at its Holm level."""
    ps = [bootstrap_p(m) for m in resampled]
    out = []
    for m, p, p_holm, a in zip(resampled, ps, holm(ps), holm_levels(ps, alpha)):
        low, high = percentile_interval(m, 1 - a)
        out.append(Verdict(p, p_holm, a, low, high))
    return out


def power_seeds(var_seed: float, var_item: float, var_residual: float, n_items: int,
                effect: float, alpha: float = ALPHA, power: float = 0.8,
                max_seeds: int = 100) -> int | None:
    """The fewest seeds n for which a paired mean difference of ``effect`` is detected with
    ``power`` at two-sided ``alpha``, normal approximation: (z_{1-alpha/2} + z_power) SE(n) <=
    effect, SE(n)^2 = var_seed / n + var_item / n_items + var_residual / (n n_items). None when
    no n up to ``max_seeds`` does (the items alone leave too much)."""
    from scipy import stats

    z = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    for n in range(2, max_seeds + 1):
        if z * math.sqrt(var_seed / n + var_item / n_items + var_residual / (n * n_items)) <= effect:
            return n
    return None


def detectable_effect(var_seed: float, var_item: float, var_residual: float, n_seeds: int,
                      n_items: int, alpha: float = ALPHA, power: float = 0.8) -> float:
    """The smallest paired mean difference detected with ``power`` at two-sided ``alpha``
    with n_seeds seeds and n_items items (normal approximation, as :func:`power_seeds`)."""
    from scipy import stats

    z = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    return z * math.sqrt(var_seed / n_seeds + var_item / n_items
                         + var_residual / (n_seeds * n_items))


def variance_components(diffs) -> dict:
    """Seed, item and residual variance components of an (n_seeds, n_items) matrix of paired
    differences (two-way random effects without replication, ANOVA estimators, negative
    components set to 0): {"seed", "item", "residual"}, in squared units of the matrix."""
    d = np.asarray(diffs, dtype=float)
    n, m = d.shape
    seed_means, item_means, grand = d.mean(axis=1), d.mean(axis=0), d.mean()
    resid = d - seed_means[:, None] - item_means[None, :] + grand
    ms_res = float((resid ** 2).sum() / ((n - 1) * (m - 1)))
    ms_seed = float(m * np.var(seed_means, ddof=1))
    ms_item = float(n * np.var(item_means, ddof=1))
    return {"seed": max((ms_seed - ms_res) / m, 0.0), "item": max((ms_item - ms_res) / n, 0.0),
            "residual": ms_res}


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
