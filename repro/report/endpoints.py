"""Table 0: the declared primary endpoints (:data:`repro.design.ENDPOINTS`), each tested once.

For every endpoint the paired per-item differences of its two arms (n seeds x the test items)
are resampled by the crossed bootstrap (:func:`repro.scoring.stats.crossed_means`,
:data:`~repro.scoring.stats.ENDPOINT_DRAWS` resamples); the bootstrap p-values are
Holm-adjusted over the endpoints, and each endpoint prints the interval at the level Holm
tested it at, so that its interval excludes 0 exactly when its verdict is 'higher' or
'lower'. Beside it: the 95% crossed interval, the 95% t-interval over seeds alone (items
fixed), the variance components and the effect its seeds can detect. Each within-noise
variant is an estimate at the endpoint's level, without a verdict word.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repro.design import ENDPOINTS, TARGET_EFFECT, TARGET_POWER, Endpoint
from repro.report.cells import Interval
from repro.report.common import data_line, item_scores, paired_items
from repro.report.table import Table
from repro.scoring.metrics import chance_average_precision
from repro.scoring.stats import (ALPHA, ENDPOINT_DRAWS, LEVEL, Estimate, Verdict, crossed_means,
                                 detectable_effect, endpoint_verdicts, percentile_interval,
                                 power_seeds, t_interval, variance_components)


@dataclass(frozen=True)
class Reading:
    """One comparison of an endpoint (itself or a within-noise variant): its per-item
    differences summarised."""

    setting: str
    estimate: Estimate           # mean and 95% crossed interval
    seed_only: tuple             # (low, high): the 95% t-interval over per-seed means
    means: np.ndarray            # (ENDPOINT_DRAWS,) crossed resampled means
    components: dict             # variance components (stats.variance_components)


@dataclass(frozen=True)
class Answer:
    """A declared endpoint answered: its reading, its verdict (Holm over the endpoints) and
    its variants' readings with their intervals at the endpoint's level."""

    endpoint: Endpoint
    reading: Reading
    verdict: Verdict
    variants: tuple              # ((Reading, (low, high) at the endpoint's level), ...)

    @property
    def agrees(self) -> bool:
        """Does every variant's interval at the endpoint's level say what the verdict says?"""
        return all(_sign(lo, hi) == _sign(self.verdict.low, self.verdict.high)
                   for _, (lo, hi) in self.variants)

    def span(self) -> tuple[float, float]:
        """(lowest, highest) mean over the endpoint and its variants."""
        means = [self.reading.estimate.mean] + [r.estimate.mean for r, _ in self.variants]
        return min(means), max(means)


def _sign(low: float, high: float) -> int:
    return 1 if low > 0 else -1 if high < 0 else 0


def chance_scores(task, langs) -> np.ndarray:
    """(n_test_images,) float64: each test image's expected tagging AP under a random
    ranking of the language's vocabulary, percent, averaged over ``langs``."""
    per_lang = []
    for lang in langs:
        vocab, tag_lists = task.tags[lang]
        n_true = [np.unique(t).size for t in tag_lists]
        per_lang.append(100.0 * chance_average_precision(n_true, vocab.feats.shape[0]))
    return np.mean(per_lang, axis=0)


def _differences(grid, e: Endpoint, a, b) -> np.ndarray:
    """(n_seeds, n_items) paired differences of one comparison of ``e``."""
    if b is not None:
        return paired_items(grid, e.tower, a, b, e.langs, e.key, e.b_tower)
    chance = chance_scores(grid.arm_task(e.tower, a), e.langs)
    return np.array([item_scores(grid.run_dir(e.tower, a, s), e.langs, e.key) - chance
                     for s in grid.seeds if grid.result(e.tower, a, s) is not None])


def _reading(setting: str, d: np.ndarray) -> Reading:
    means = crossed_means(d, ENDPOINT_DRAWS)
    low, high = percentile_interval(means, LEVEL)
    _, s_low, s_high = t_interval(d.mean(axis=1), LEVEL)
    return Reading(setting, Estimate(d.shape[0], d.shape[1], float(d.mean()), low, high),
                   (s_low, s_high), means, variance_components(d))


def runnable(grid, e: Endpoint) -> bool:
    """Did every arm the endpoint (not its variants) reads run on at least two seeds?"""
    arms = [(e.tower, e.a)] + ([(e.b_tower or e.tower, e.b)] if e.b is not None else [])
    return all(len(grid.runs(t, a)) >= 2 for t, a in arms)


def answers(grid) -> list[Answer]:
    """Every runnable endpoint answered, Holm over those (variants that did not run on at
    least two seeds are left out)."""
    ran = [e for e in ENDPOINTS if runnable(grid, e)]
    readings = [_reading(e.setting, _differences(grid, e, e.a, e.b)) for e in ran]
    verdicts = endpoint_verdicts([r.means for r in readings], ALPHA)
    out = []
    for e, r, v in zip(ran, readings, verdicts):
        variants = []
        for var in e.variants:
            if len(grid.runs(e.tower, var.a)) >= 2 and len(grid.runs(e.tower, var.b)) >= 2:
                vr = _reading(var.setting, _differences(grid, e, var.a, var.b))
                variants.append((vr, percentile_interval(vr.means, 1 - v.level)))
        out.append(Answer(e, r, v, tuple(variants)))
    return out


def table0(grid, found: list[Answer]) -> Table:
    """Table 0: the endpoints and their within-noise variants."""
    t = Table("table0_endpoints", "Table 0: the declared primary endpoints",
              data_line(grid) + " Each endpoint is a paired difference (first arm − second, "
              "percentage points) of one metric averaged over the ten non-English languages: "
              "text-to-image R@10, or tagging mAP against the expected AP of a random ranking. "
              "Paired by seed and test item; intervals from a crossed bootstrap "
              f"({ENDPOINT_DRAWS:,} resamples of seeds and of test items, the same draw for both "
              "arms). The verdict's p is the bootstrap's, Holm-adjusted over the "
              f"{len(found)} endpoints; 'higher' / 'lower' when the interval at the level Holm "
              "tested the endpoint at excludes 0 (equivalently, its p is at most that level). "
              "Within-noise rows: the same comparison at a setting the defaults sweep could not "
              "separate from its choice, an estimate at the endpoint's level, no verdict.",
              ["endpoint", "setting", "question", "difference", "seed-only 95% t-interval",
               "interval at the endpoint's Holm level", "test", "detectable effect (80% power)"],
              labels=2)
    for a in found:
        e = a.endpoint
        t.add([e.name, e.setting, e.claim, a.reading.estimate, Interval(*a.reading.seed_only),
               Interval(a.verdict.low, a.verdict.high), a.verdict, _detectable(a.reading)])
        for r, (low, high) in a.variants:
            t.add([e.name, f"within noise: {r.setting}", "", r.estimate, Interval(*r.seed_only),
                   Interval(low, high), "", _detectable(r)])
    t.notes += power_notes(found)
    return t


def _detectable(r: Reading) -> float:
    c = r.components
    return detectable_effect(c["seed"], c["item"], c["residual"], r.estimate.n, r.estimate.items)


def power_notes(found: list[Answer]) -> list[str]:
    """Per endpoint: its variance components, the seeds a 1-point effect needs, and the
    widths of its seed-only and crossed intervals."""
    out = [f"Detectable effect: the difference found with {TARGET_POWER:.0%} power at two-sided "
           f"{ALPHA:g} (normal approximation), Var(mean) = σ²_seed / n + σ²_item / N + "
           "σ²_residual / (n N), from this table's own seed × item variance components."]
    for a in found:
        c, est = a.reading.components, a.reading.estimate
        need = power_seeds(c["seed"], c["item"], c["residual"], est.items, TARGET_EFFECT)
        crossed = est.high - est.low
        seed_only = a.reading.seed_only[1] - a.reading.seed_only[0]
        out.append(f"{a.endpoint.name}: σ²_seed {c['seed']:.2f}, σ²_item {c['item']:.1f}, "
                   f"σ²_residual {c['residual']:.1f} ({est.n} seeds × {est.items} items); a "
                   f"{TARGET_EFFECT:g}-point effect needs "
                   + (f"{need} seeds" if need else "more than 100 seeds (the test items alone "
                      "leave too much variance)")
                   + f"; crossed interval {crossed:.2f} wide, seed-only {seed_only:.2f}"
                   + (f" ({crossed / seed_only:.2f}x)." if seed_only > 0 else
                      " (the per-seed means agree exactly)."))
    return out
