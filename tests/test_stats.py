"""Paired statistics over seeds: golden values by hand, checked against SciPy and brute force."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from repro import stats


def test_t_interval_by_hand():
    # d = [1, 2, 3]: mean 2, sd 1, n 3; t_{0.975, 2} = 4.302652729911275
    mean, low, high = stats.t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)
    assert mean == 2.0 and low == pytest.approx(2 - half) and high == pytest.approx(2 + half)
    ci = sps.ttest_1samp([1.0, 2.0, 3.0], 0).confidence_interval(0.95)
    assert (low, high) == pytest.approx((ci.low, ci.high))
    with pytest.raises(ValueError, match="at least 2"):
        stats.t_interval([1.0])


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


def test_verdict_follows_the_interval():
    assert stats.paired_summary([1.0, 1.2, 0.9, 1.1, 1.0])["verdict"] == "higher"
    assert stats.paired_summary([-1.0, -1.2, -0.9, -1.1, -1.0])["verdict"] == "lower"
    s = stats.paired_summary([2.0, -1.0, 0.5, 1.5, -0.5])
    assert s["verdict"] == "no difference shown" and s["low"] < 0 < s["high"]
    assert "[" in stats.format_summary(s) and "p =" in stats.format_summary(s)
