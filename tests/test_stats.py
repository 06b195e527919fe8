"""Paired statistics over seeds and items: golden values by hand, checked against SciPy,
simulation and brute-force loops."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from repro.scoring import stats


def test_t_interval_by_hand():
    # d = [1, 2, 3]: mean 2, sd 1, n 3; t_{0.975, 2} = 4.302652729911275
    mean, low, high = stats.t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)
    assert mean == 2.0 and low == pytest.approx(2 - half) and high == pytest.approx(2 + half)
    ci = sps.ttest_1samp([1.0, 2.0, 3.0], 0).confidence_interval(0.95)
    assert (low, high) == pytest.approx((ci.low, ci.high))
    with pytest.raises(ValueError, match="at least 2"):
        stats.t_interval([1.0])


@pytest.mark.parametrize("diffs", [[], [1.3], np.array([2.5]), 0.7])
def test_one_replicate_has_no_interval(diffs):
    """An estimate of fewer than 2 per-seed differences is refused: no caller can print an
    interval from one replicate (the tables print "n/a" there)."""
    assert stats.MIN_PAIRED_N == 2
    with pytest.raises(ValueError, match=r"^an estimate needs at least 2 per-seed differences "
                                         r"\(one per distinct seed\), got [01]: one replicate "
                                         "has no spread$"):
        stats.seed_estimate(diffs)
    with pytest.raises(ValueError, match="n_seeds >= 2"):
        stats.crossed_means(np.ones((1, 5)))
    two = stats.seed_estimate([1.0, 3.0])
    assert (two.n, two.items, two.mean) == (2, 0, 2.0)


def test_crossed_bootstrap_by_hand():
    # a constant matrix: every resample has the same mean
    assert np.all(stats.crossed_means(np.full((3, 4), 2.5), draws=50) == 2.5)
    # 2 seeds x 1 item, d = [[0], [4]]: a resample's mean is 0, 2 or 4 with probabilities
    # 1/4, 1/2, 1/4 (two seed draws, the one item always drawn)
    m = stats.crossed_means(np.array([[0.0], [4.0]]), draws=40_000)
    assert set(np.unique(m)) == {0.0, 2.0, 4.0}
    assert [np.mean(m == v) for v in (0.0, 2.0, 4.0)] == pytest.approx([0.25, 0.5, 0.25], abs=0.01)
    # 1 seed row repeated: only the items vary; items=False keeps every item: only seeds vary
    d = np.array([[1.0, 3.0], [1.0, 3.0]])
    assert np.all(stats.crossed_means(d, draws=100, items=False) == 2.0)


@pytest.mark.parametrize("seed", range(3))
def test_crossed_bootstrap_matches_a_loop_over_every_draw(seed):
    """The counts-and-einsum implementation against the definition: the same index draws
    (seed indices of every resample, then item indices), one resampled matrix at a time."""
    d = np.random.default_rng(seed).normal(0.5, 2.0, size=(4, 7))
    fast = stats.crossed_means(d, draws=300, seed=11)
    rng = np.random.default_rng(11)
    seeds, items = rng.integers(0, 4, (300, 4)), rng.integers(0, 7, (300, 7))
    slow = [float(np.mean([[d[s, i] for i in items[b]] for s in seeds[b]])) for b in range(300)]
    assert fast == pytest.approx(slow, abs=1e-12)


def test_percentile_interval_and_p_are_one_reading_of_the_resamples():
    # 19 resamples 1..19: a 90% interval takes the k = floor(0.1 * 20 / 2) = 1st from each end
    m = np.arange(1.0, 20.0)
    assert stats.percentile_interval(m, 0.9) == (1.0, 19.0)
    assert stats.percentile_interval(m, 0.5) == (5.0, 15.0)      # k = floor(0.5 * 20 / 2) = 5
    assert stats.percentile_interval(m, 0.99) == (-math.inf, math.inf)  # k = 0
    # none <= 0: p = 2 (0 + 1) / 20 = 0.1; one <= 0: 2 * 2 / 20
    assert stats.bootstrap_p(m) == pytest.approx(0.1)
    assert stats.bootstrap_p(m - 1) == pytest.approx(0.2)
    assert stats.bootstrap_p(np.array([-1.0, 1.0])) == 1.0
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = rng.normal(rng.uniform(-1, 1), 1.0, size=int(rng.integers(20, 400)))
        p = stats.bootstrap_p(x)
        for a in (0.01, 0.05, 0.1, 0.2, p, 2 * p):
            low, high = stats.percentile_interval(x, 1 - a)
            assert (p <= a + 1e-12) == (low > 0 or high < 0), (p, a, low, high)


def test_holm_levels_by_hand_and_against_the_adjusted_p():
    # p = (0.001, 0.04, 0.012, 0.3), alpha 0.05, m 4: 0.001 <= 0.0125 (rejected), 0.012 <=
    # 0.05/3 (rejected), 0.04 > 0.025: stop; 0.04 and 0.3 keep the level 0.025
    assert stats.holm_levels([0.001, 0.04, 0.012, 0.3]) == pytest.approx(
        [0.0125, 0.025, 0.05 / 3, 0.025])
    rng = np.random.default_rng(1)
    for _ in range(300):
        p = list(rng.uniform(0, 0.1, size=int(rng.integers(1, 8))))
        levels, adjusted = stats.holm_levels(p), stats.holm(p)
        for pi, a, ad in zip(p, levels, adjusted):
            assert (pi <= a) == (ad <= 0.05)


def test_endpoint_verdicts_print_the_interval_their_verdict_uses():
    rng = np.random.default_rng(2)
    family = [stats.crossed_means(rng.normal(mu, 3.0, (8, 60)), draws=4000)
              for mu in (2.0, -1.5, 0.1, 0.6)]
    verdicts = stats.endpoint_verdicts(family)
    assert [v.word for v in verdicts][:3] == ["higher", "lower", "no difference shown"]
    ps = [stats.bootstrap_p(m) for m in family]
    for v, m, level in zip(verdicts, family, stats.holm_levels(ps)):
        assert v.level == level and (v.low, v.high) == stats.percentile_interval(m, 1 - level)
        assert (v.word != "no difference shown") == (v.p_holm <= 0.05) == (v.p <= v.level)
    assert stats.verdict_word(0.1, 2.0) == "higher" and stats.verdict_word(-2, -0.1) == "lower"


def test_variance_components_recover_a_simulated_design():
    """Seed, item and residual variances of a two-way random-effects matrix, estimated back
    from a large simulated one (the ANOVA estimators are unbiased)."""
    rng = np.random.default_rng(4)
    n, m = 60, 400
    d = (rng.normal(0, 2.0, (n, 1)) + rng.normal(0, 3.0, (1, m)) + rng.normal(0, 5.0, (n, m)))
    c = stats.variance_components(d)
    assert c["seed"] == pytest.approx(4.0, rel=0.4)
    assert c["item"] == pytest.approx(9.0, rel=0.2)
    assert c["residual"] == pytest.approx(25.0, rel=0.05)
    # by hand, 2 x 2: d = [[0, 2], [2, 4]] is additive: no residual; seed and item means
    # (1, 3) each: MS 2 * var = 2 * 2 = 4, minus 0, over 2 -> 2
    assert stats.variance_components([[0.0, 2.0], [2.0, 4.0]]) == pytest.approx(
        {"seed": 2.0, "item": 2.0, "residual": 0.0})


def test_power_seeds_and_the_detectable_effect_are_inverse():
    # seeds only (no item variance): z = 1.96 + 0.8416 = 2.8016; sd 1: n >= (2.8016 / 1)^2 = 7.85
    assert stats.power_seeds(1.0, 0.0, 0.0, 500, effect=1.0) == 8
    assert stats.detectable_effect(1.0, 0.0, 0.0, 8, 500) == pytest.approx(2.8016 / math.sqrt(8), abs=1e-3)
    # an item variance whose floor alone exceeds the effect: no number of seeds is enough
    assert stats.power_seeds(0.1, 500.0, 0.0, 500, effect=1.0) is None
    for vs, vi, vr in ((0.3, 36.0, 400.0), (1.1, 69.0, 640.0), (0.25, 6.0, 350.0)):
        n = stats.power_seeds(vs, vi, vr, 500, effect=1.0)
        if n is not None:
            assert stats.detectable_effect(vs, vi, vr, n, 500) <= 1.0
            assert stats.detectable_effect(vs, vi, vr, n - 1, 500) > 1.0


def test_holm_by_hand_and_against_a_brute_force_definition():
    # p = (0.01, 0.04, 0.03, 0.20), m = 4: sorted 0.01, 0.03, 0.04, 0.20 -> x4, x3, x2, x1
    # = 0.04, 0.09, 0.08 -> 0.09 (monotone), 0.20 -> 0.20
    assert stats.holm([0.01, 0.04, 0.03, 0.20]) == pytest.approx([0.04, 0.09, 0.09, 0.20])
    assert stats.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert stats.holm([]) == []
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = list(rng.uniform(0, 0.2, size=int(rng.integers(1, 9))))
        order = sorted(range(len(p)), key=lambda i: p[i])
        slow = {}
        for rank, i in enumerate(order):  # the definition: max over the smaller ones
            slow[i] = max(min(1.0, (len(p) - r) * p[order[r]]) for r in range(rank + 1))
        assert stats.holm(p) == pytest.approx([slow[i] for i in range(len(p))])


def test_bootstrap_choice_by_hand():
    # one seed, one item: every resample is the data itself; B beats A, C ties B (B first)
    out = stats.bootstrap_choice({"A": [[1.0]], "B": [[3.0]], "C": [[3.0]]}, draws=50)
    assert [out[k]["win_share"] for k in "ABC"] == [0.0, 1.0, 0.0]
    assert (out["B"]["low"], out["B"]["mean"], out["B"]["high"]) == (3.0, 3.0, 3.0)
    # A higher than B on every seed and item: A wins every resample, whatever is drawn
    a = np.array([[5.0, 6.0, 7.0], [4.0, 8.0, 6.0]])
    out = stats.bootstrap_choice({"A": a, "B": a - 1}, draws=200)
    assert out["A"]["win_share"] == 1.0 and out["B"]["win_share"] == 0.0
    assert out["A"]["mean"] == pytest.approx(6.0) and 4.0 <= out["A"]["low"] <= 6.0 <= out["A"]["high"] <= 8.0


def test_bootstrap_choice_matches_a_loop_over_every_draw():
    rng = np.random.default_rng(7)
    data = {n: rng.normal(m, 3.0, (3, 8)) for n, m in (("x", 10.0), ("y", 10.5), ("z", 9.0))}
    out = stats.bootstrap_choice(data, draws=300, seed=5)
    draw = np.random.default_rng(5)      # the same draws, one mean at a time
    wins, means = dict.fromkeys(data, 0), {n: [] for n in data}
    for _ in range(300):
        s, i = draw.integers(0, 3, 3), draw.integers(0, 8, 8)
        m = {n: sum(float(v[a, b]) for a in s for b in i) / 24 for n, v in data.items()}
        for n in data:
            means[n].append(m[n])
        wins[max(data, key=lambda n: m[n])] += 1
    for n in data:
        assert out[n]["win_share"] == wins[n] / 300
        assert out[n]["low"] == pytest.approx(np.quantile(means[n], 0.025))
        assert out[n]["high"] == pytest.approx(np.quantile(means[n], 0.975))
    assert sum(v["win_share"] for v in out.values()) == pytest.approx(1.0)
