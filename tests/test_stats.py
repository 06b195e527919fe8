"""Paired statistics over seeds: golden values by hand, checked against SciPy and brute force."""

import itertools
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
def test_one_replicate_has_no_p_value_and_no_verdict(diffs):
    """A paired summary of fewer than 2 differences (one seed, or a seed paired with itself
    once) is refused by paired_summary itself: no caller can print a p-value or a verdict
    from one replicate (the tables print "n/a" there)."""
    assert stats.MIN_PAIRED_N == 2
    with pytest.raises(ValueError, match=r"^a paired summary needs at least 2 per-seed "
                                         r"differences \(one per distinct seed\), got [01]: one "
                                         "replicate has no spread, so no p-value and no verdict$"):
        stats.paired_summary(diffs)
    two = stats.paired_summary([1.0, 3.0])  # the smallest summary: n 2, one degree of freedom
    assert (two.n, two.mean) == (2, 2.0)
    assert two.p_t == pytest.approx(sps.ttest_1samp([1.0, 3.0], 0).pvalue)


def test_sign_flip_p_by_hand():
    # all 3 positive and distinct: only the all-plus and all-minus patterns reach |mean| 2
    assert stats.sign_flip_p([1.0, 2.0, 3.0]) == pytest.approx(2 / 8)
    # [1, -1]: observed |mean| 0, which every sign pattern reaches -> p = 1
    assert stats.sign_flip_p([1.0, -1.0]) == 1.0
    # five seeds, all the same sign: the smallest p the test can give
    assert stats.sign_flip_p([0.5, 1.0, 0.2, 2.0, 0.1]) == pytest.approx(2 / 32)


@pytest.mark.parametrize("seed", range(20))
def test_sign_flip_matches_brute_force_and_scipy(seed):
    d = np.round(np.random.default_rng(seed).normal(0.3, 1.0, size=5), 1)
    observed = abs(d.mean())
    count = 0
    for signs in itertools.product((1, -1), repeat=5):
        count += abs(np.dot(signs, d) / 5) >= observed - 1e-12
    assert stats.sign_flip_p(d) == pytest.approx(count / 32)
    res = sps.permutation_test((d,), np.mean, permutation_type="samples",
                               alternative="two-sided", n_resamples=np.inf)
    assert stats.sign_flip_p(d) == pytest.approx(res.pvalue)


def test_verdict_follows_the_holm_adjusted_t_test():
    assert stats.paired_summary([1.0, 1.2, 0.9, 1.1, 1.0]).verdict == "higher"
    assert stats.paired_summary([-1.0, -1.2, -0.9, -1.1, -1.0]).verdict == "lower"
    s = stats.paired_summary([2.0, -1.0, 0.5, 1.5, -0.5])
    assert s.verdict == "no difference shown" and s.low < 0 < s.high
    # the printed p is the t-test of the same interval: below 0.05 exactly when 0 is outside
    for seed in range(30):
        d = np.random.default_rng(seed).normal(0.8, 1.0, size=5)
        s = stats.paired_summary(d)
        assert s.p_t == pytest.approx(sps.ttest_1samp(d, 0).pvalue)
        assert (s.p_t < 0.05) == (s.low > 0 or s.high < 0)
        assert stats.t_p_from_interval(s.mean, s.low, s.high, 5) == pytest.approx(s.p_t)
    # a family: the same cell loses its verdict once adjusted over more tests
    strong = stats.paired_summary([1.0, 1.3, 0.8, 1.1, 0.2])
    assert strong.p_t < 0.05 and strong.verdict == "higher"
    family = stats.adjust_family([strong] + [stats.paired_summary([1.0, -1.0, 0.5, -0.4, 0.1])] * 9)
    assert family[0].p_holm == pytest.approx(min(1.0, 10 * strong.p_t))
    assert family[0].verdict == ("higher" if 10 * strong.p_t < 0.05 else "no difference shown")
    assert "t-test p" in strong.text() and "sign-flip p" in strong.text()


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


def test_t_test_p_without_spread():
    assert stats.t_test_p(0.0, 0.0, 5) == 1.0 and stats.t_test_p(0.3, 0.0, 5) == 0.0


def test_sign_flip_monte_carlo_beyond_the_exact_limit():
    d = np.round(np.random.default_rng(3).normal(0.25, 1.0, size=18), 1)
    exact = stats.sign_flip_p(d, exact_max_n=18)               # 2^18 patterns
    mc = stats.sign_flip_p(d)                                   # n = 18 > 16: Monte Carlo
    assert mc == stats.sign_flip_p(d)                           # seeded: same estimate
    assert abs(mc - exact) < 0.01 and mc > 0
    s = stats.paired_summary(d)
    assert not s.sign_flip_exact and s.p_sign_flip == mc


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
