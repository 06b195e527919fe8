"""Loss values against hand-computed numbers on B = 3 unit vectors with known cosines."""

import math

import pytest
import torch

from repro import losses


def unit(deg):
    r = math.radians(deg)
    return [math.cos(r), math.sin(r)]


@pytest.fixture
def batch():
    # Captions at 0, 90, 180 degrees; images at 30, 60, 200 degrees. sim[a, b] = cos(t_a - v_b).
    t = torch.tensor([unit(0), unit(90), unit(180)], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([unit(30), unit(60), unit(200)], dtype=torch.float64, requires_grad=True)
    return t, v, torch.tensor([0, 1, 2])


C = lambda deg: math.cos(math.radians(deg))  # noqa: E731
relu = lambda x: max(0.0, x)  # noqa: E731


def test_patr_hardest(batch):
    t, v, item = batch
    # t0: pos cos30; negatives v1 (cos60), v2 (cos200): hardest v1. push = [0.5 - (1 - cos60)]+ = 0
    # t1: pos cos(90-60)=cos30; negs v0 cos60, v2 cos110: hardest v0 -> [0.5 - 1 + cos60]+ = 0
    # t2: pos cos20; negs v0 cos150, v1 cos120: hardest v1 -> [0.5 - 1 + cos120]+ = 0
    expected = ((1 - C(30)) + (1 - C(30)) + (1 - C(20))) / 3
    loss, diag = losses.patr_m3(t, v, item, margin=0.5, lambda_tt=0.0)
    assert loss.item() == pytest.approx(expected)
    # A larger margin makes the pushes active: mu = 0.9.
    push = relu(0.9 - 1 + C(60)) + relu(0.9 - 1 + C(60)) + relu(0.9 - 1 + C(120))
    loss9, _ = losses.patr_m3(t, v, item, margin=0.9, lambda_tt=0.0)
    assert loss9.item() == pytest.approx(expected + push / 3)
    assert diag["cos_neg"].item() == pytest.approx((C(60) + C(60) + C(120)) / 3)


def test_m3_lambda_zero_and_one(batch):
    t, v, item = batch
    base, _ = losses.patr_m3(t, v, item, margin=0.9, lambda_tt=0.0)
    same, _ = losses.patr_m3(t, v, item, margin=0.9, margin_tt=0.9, lambda_tt=0.0)
    assert same.item() == pytest.approx(base.item())
    # Text of the hardest negative image: t0 -> t1 (cos90), t1 -> t0 (cos90), t2 -> t1 (cos90).
    tt = 3 * relu(0.9 - 1 + C(90))
    m3, _ = losses.patr_m3(t, v, item, margin=0.9, margin_tt=0.9, lambda_tt=1.0)
    assert m3.item() == pytest.approx(base.item() + tt / 3)
    m3_big, _ = losses.patr_m3(t, v, item, margin=0.9, margin_tt=1.5, lambda_tt=1.0)
    assert m3_big.item() == pytest.approx(base.item() + 3 * relu(1.5 - 1 + C(90)) / 3)


def test_same_item_pairs_are_never_negatives(batch):
    t, v, _ = batch
    item = torch.tensor([0, 0, 1])  # t0 and t1 describe the same image
    loss, _ = losses.patr_m3(t, v, item, margin=0.9, lambda_tt=0.0)
    # t0: only v2 (cos200) is negative; t1: only v2 (cos110); t2: hardest of v0, v1 -> v1 cos120.
    expected = ((1 - C(30)) + relu(0.9 - 1 + C(200)) + (1 - C(30)) + relu(0.9 - 1 + C(110))
                + (1 - C(20)) + relu(0.9 - 1 + C(120))) / 3
    assert loss.item() == pytest.approx(expected)


def test_vsepp_sum_and_hardest(batch):
    t, v, item = batch
    m = 1.5  # large enough that several negatives violate, so sum != max
    s = [[C(30), C(60), C(200)], [C(60), C(30), C(110)], [C(150), C(120), C(20)]]
    pos = [s[0][0], s[1][1], s[2][2]]
    img_terms = [[relu(m - pos[a] + s[a][b]) for b in range(3) if b != a] for a in range(3)]
    txt_terms = [[relu(m - pos[a] + s[b][a]) for b in range(3) if b != a] for a in range(3)]
    want_sum = sum(sum(x) + sum(y) for x, y in zip(img_terms, txt_terms)) / 3
    want_max = sum(max(x) + max(y) for x, y in zip(img_terms, txt_terms)) / 3
    got_sum, _ = losses.vsepp(t, v, item, m, "sum")
    got_max, _ = losses.vsepp(t, v, item, m, "hardest")
    assert got_sum.item() == pytest.approx(want_sum)
    assert got_max.item() == pytest.approx(want_max)
    assert want_sum > want_max > 0


def test_infonce_value(batch):
    t, v, item = batch
    tau = 0.5
    s = [[C(30), C(60), C(200)], [C(60), C(30), C(110)], [C(150), C(120), C(20)]]
    def ce(rows):
        return sum(-r[i] / tau + math.log(sum(math.exp(x / tau) for x in r))
                   for i, r in enumerate(rows)) / 3
    cols = [[s[b][a] for b in range(3)] for a in range(3)]
    want = 0.5 * (ce(s) + ce(cols))
    got, _ = losses.infonce(t, v, item, tau)
    assert got.item() == pytest.approx(want)


@pytest.mark.parametrize("fn", [
    lambda t, v, i: losses.patr_m3(t, v, i, margin=0.9),
    lambda t, v, i: losses.vsepp(t, v, i, 0.5, "sum"),
    lambda t, v, i: losses.infonce(t, v, i, 0.05),
])
def test_gradients_flow_to_both_sides(batch, fn):
    t, v, item = batch
    loss, _ = fn(t, v, item)
    loss.backward()
    assert t.grad.abs().sum() > 0 and v.grad.abs().sum() > 0
    assert torch.isfinite(t.grad).all() and torch.isfinite(v.grad).all()


def test_random_negative_is_seeded_and_never_a_positive():
    sim = torch.rand(6, 6)
    item = torch.tensor([0, 0, 1, 1, 2, 2])
    neg = losses.negative_mask(item)
    a, _ = losses.pick_negatives(sim, neg, "random", torch.Generator().manual_seed(3))
    b, _ = losses.pick_negatives(sim, neg, "random", torch.Generator().manual_seed(3))
    assert a.tolist() == b.tolist()
    assert all(item[r] != item[c] for r, c in enumerate(a.tolist()))


def test_diagnostics_report_the_hardest_negative_even_with_random_negatives(batch):
    t, v, item = batch
    _, hard = losses.patr_m3(t, v, item, negative="hardest")
    _, rand = losses.patr_m3(t, v, item, negative="random",
                             generator=torch.Generator().manual_seed(0))
    assert rand["cos_neg"].item() == pytest.approx(hard["cos_neg"].item())
    assert hard["cos_neg"].item() == pytest.approx((C(60) + C(60) + C(120)) / 3)
