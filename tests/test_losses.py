"""Loss values against hand-computed numbers on B = 3 unit vectors with known cosines."""

import math

import pytest
import torch

from repro.model import losses


def unit(deg):
    r = math.radians(deg)
    return [math.cos(r), math.sin(r)]


@pytest.fixture
def batch():
    # Captions at 0, 90, 180 degrees; images at 30, 60, 200 degrees. sim[a, b] = cos(t_a - v_b).
    t = torch.tensor([unit(0), unit(90), unit(180)], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([unit(30), unit(60), unit(200)], dtype=torch.float64, requires_grad=True)
    return t, v, losses.negative_mask(torch.tensor([0, 1, 2]))


C = lambda deg: math.cos(math.radians(deg))  # noqa: E731
relu = lambda x: max(0.0, x)  # noqa: E731


def test_patr_hardest(batch):
    t, v, neg = batch
    # t0: pos cos30; negatives v1 (cos60), v2 (cos200): hardest v1. push = [0.5 - (1 - cos60)]+ = 0
    # t1: pos cos(90-60)=cos30; negs v0 cos60, v2 cos110: hardest v0 -> [0.5 - 1 + cos60]+ = 0
    # t2: pos cos20; negs v0 cos150, v1 cos120: hardest v1 -> [0.5 - 1 + cos120]+ = 0
    expected = ((1 - C(30)) + (1 - C(30)) + (1 - C(20))) / 3
    loss, diag = losses.patr_m3(t, v, neg, margin=0.5, lambda_tt=0.0)
    assert loss.item() == pytest.approx(expected)
    # A larger margin makes the pushes active: mu = 0.9.
    push = relu(0.9 - 1 + C(60)) + relu(0.9 - 1 + C(60)) + relu(0.9 - 1 + C(120))
    loss9, _ = losses.patr_m3(t, v, neg, margin=0.9, lambda_tt=0.0)
    assert loss9.item() == pytest.approx(expected + push / 3)
    assert diag["cos_neg"].item() == pytest.approx((C(60) + C(60) + C(120)) / 3)


def test_m3_lambda_zero_and_one(batch):
    t, v, neg = batch
    base, _ = losses.patr_m3(t, v, neg, margin=0.9, lambda_tt=0.0)
    same, _ = losses.patr_m3(t, v, neg, margin=0.9, margin_tt=0.9, lambda_tt=0.0)
    assert same.item() == pytest.approx(base.item())
    # Text of the hardest negative image: t0 -> t1 (cos90), t1 -> t0 (cos90), t2 -> t1 (cos90).
    tt = 3 * relu(0.9 - 1 + C(90))
    m3, _ = losses.patr_m3(t, v, neg, margin=0.9, margin_tt=0.9, lambda_tt=1.0)
    assert m3.item() == pytest.approx(base.item() + tt / 3)
    m3_big, _ = losses.patr_m3(t, v, neg, margin=0.9, margin_tt=1.5, lambda_tt=1.0)
    assert m3_big.item() == pytest.approx(base.item() + 3 * relu(1.5 - 1 + C(90)) / 3)


def test_same_item_pairs_are_never_negatives(batch):
    t, v, _ = batch
    item = torch.tensor([0, 0, 1])  # t0 and t1 describe the same image
    loss, _ = losses.patr_m3(t, v, losses.negative_mask(item), margin=0.9, lambda_tt=0.0)
    # t0: only v2 (cos200) is negative; t1: only v2 (cos110); t2: hardest of v0, v1 -> v1 cos120.
    expected = ((1 - C(30)) + relu(0.9 - 1 + C(200)) + (1 - C(30)) + relu(0.9 - 1 + C(110))
                + (1 - C(20)) + relu(0.9 - 1 + C(120))) / 3
    assert loss.item() == pytest.approx(expected)


def test_vsepp_sum_and_hardest(batch):
    t, v, neg = batch
    m = 1.5  # large enough that several negatives violate, so sum != max
    s = [[C(30), C(60), C(200)], [C(60), C(30), C(110)], [C(150), C(120), C(20)]]
    pos = [s[0][0], s[1][1], s[2][2]]
    img_terms = [[relu(m - pos[a] + s[a][b]) for b in range(3) if b != a] for a in range(3)]
    txt_terms = [[relu(m - pos[a] + s[b][a]) for b in range(3) if b != a] for a in range(3)]
    want_sum = sum(sum(x) + sum(y) for x, y in zip(img_terms, txt_terms)) / 3
    want_max = sum(max(x) + max(y) for x, y in zip(img_terms, txt_terms)) / 3
    got_sum, _ = losses.vsepp(t, v, neg, m, "sum")
    got_max, _ = losses.vsepp(t, v, neg, m, "hardest")
    assert got_sum.item() == pytest.approx(want_sum)
    assert got_max.item() == pytest.approx(want_max)
    assert want_sum > want_max > 0


def test_infonce_value(batch):
    t, v, neg = batch
    tau = 0.5
    s = [[C(30), C(60), C(200)], [C(60), C(30), C(110)], [C(150), C(120), C(20)]]
    def ce(rows):
        return sum(-r[i] / tau + math.log(sum(math.exp(x / tau) for x in r))
                   for i, r in enumerate(rows)) / 3
    cols = [[s[b][a] for b in range(3)] for a in range(3)]
    want = 0.5 * (ce(s) + ce(cols))
    got, _ = losses.infonce(t, v, neg, tau)
    assert got.item() == pytest.approx(want)


@pytest.mark.parametrize("fn", [
    lambda t, v, i: losses.patr_m3(t, v, i, margin=0.9),
    lambda t, v, i: losses.vsepp(t, v, i, 0.5, "sum"),
    lambda t, v, i: losses.infonce(t, v, i, 0.05),
])
def test_gradients_flow_to_both_sides(batch, fn):
    t, v, neg = batch
    loss, _ = fn(t, v, neg)
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
    t, v, neg = batch
    _, hard = losses.patr_m3(t, v, neg, negative="hardest")
    _, rand = losses.patr_m3(t, v, neg, negative="random",
                             generator=torch.Generator().manual_seed(0))
    assert rand["cos_neg"].item() == pytest.approx(hard["cos_neg"].item())
    assert hard["cos_neg"].item() == pytest.approx((C(60) + C(60) + C(120)) / 3)


# ----------------------------------------------------------------------------- false negatives

SHARED_TEXT = dict(item=torch.tensor([0, 1, 2]), text_id=torch.tensor([7, 7, 3]))  # t0, t1 same text


def test_mask_excludes_identical_texts_of_other_items():
    neg = losses.negative_mask(**SHARED_TEXT)
    assert neg.tolist() == [[False, False, True], [False, False, True], [True, True, False]]
    # without text ids only the item decides
    assert losses.negative_mask(SHARED_TEXT["item"])[0, 1]


def test_patr_and_m3_never_pick_an_identical_text(batch):
    t, v, _ = batch
    neg = losses.negative_mask(**SHARED_TEXT)
    # t0's most similar other image is v1 (cos60), but t1 carries t0's text: v2 (cos200) is used.
    idx, _ = losses.pick_negatives(t @ v.T, neg, "hardest")
    assert idx.tolist() == [2, 2, 1]
    patr, _ = losses.patr_m3(t, v, neg, margin=0.9, lambda_tt=0.0)
    expected = ((1 - C(30)) + relu(0.9 - 1 + C(200)) + (1 - C(30)) + relu(0.9 - 1 + C(110))
                + (1 - C(20)) + relu(0.9 - 1 + C(120))) / 3
    assert patr.item() == pytest.approx(expected)
    # M3's text term: t- = t2 for t0 and t1 (cos180, cos90), t1 for t2 (cos90): all inactive at 0.9
    m3, _ = losses.patr_m3(t, v, neg, margin=0.9, margin_tt=1.2, lambda_tt=1.0)
    tt = relu(1.2 - 1 + C(180)) + relu(1.2 - 1 + C(90)) + relu(1.2 - 1 + C(90))
    assert m3.item() == pytest.approx(expected + tt / 3)
    for seed in range(20):
        r, _ = losses.pick_negatives(t @ v.T, neg, "random", torch.Generator().manual_seed(seed))
        assert r[0].item() == 2 and r[1].item() == 2


def test_vsepp_and_infonce_ignore_identical_texts(batch):
    """The (t0, v1) and (t1, v0) cells carry no loss: moving v1 towards t0 changes nothing for
    anchor 0, and each loss equals the one where t0 and t1 share an item."""
    t, v, _ = batch
    neg = losses.negative_mask(**SHARED_TEXT)
    merged = losses.negative_mask(torch.tensor([0, 0, 1]))
    assert torch.equal(neg, merged)
    m = 1.5
    s = [[C(30), C(60), C(200)], [C(60), C(30), C(110)], [C(150), C(120), C(20)]]
    pos = [s[0][0], s[1][1], s[2][2]]
    allowed = [[2], [2], [0, 1]]
    img = [[relu(m - pos[a] + s[a][b]) for b in allowed[a]] for a in range(3)]
    txt = [[relu(m - pos[a] + s[b][a]) for b in allowed[a]] for a in range(3)]
    got_sum, _ = losses.vsepp(t, v, neg, m, "sum")
    got_max, _ = losses.vsepp(t, v, neg, m, "hardest")
    assert got_sum.item() == pytest.approx(sum(sum(x) + sum(y) for x, y in zip(img, txt)) / 3)
    assert got_max.item() == pytest.approx(sum(max(x) + max(y) for x, y in zip(img, txt)) / 3)
    tau = 0.5
    def ce(rows):
        return sum(-r[i] / tau + math.log(sum(math.exp(x / tau) for j, x in enumerate(r)
                                              if j == i or j in allowed[i]))
                   for i, r in enumerate(rows)) / 3
    cols = [[s[b][a] for b in range(3)] for a in range(3)]
    got, diag = losses.infonce(t, v, neg, tau)
    assert got.item() == pytest.approx(0.5 * (ce(s) + ce(cols)))
    # the plateau diagnostics use the same mask: t0's hardest allowed negative is v2
    assert diag["cos_neg"].item() == pytest.approx((C(200) + C(110) + C(120)) / 3)


def test_compute_loss_builds_the_text_mask_for_every_loss(batch):
    from repro.config import make_config

    t, v, _ = batch
    for sets in (["loss=patr", "lambda_tt=1"], ["loss=vsepp"], ["loss=infonce"]):
        cfg = make_config("mini", sets + ["margin=0.9", "vsepp_margin=1.5"])
        with_text, _ = losses.compute_loss(cfg, t, v, SHARED_TEXT["item"], SHARED_TEXT["text_id"])
        merged, _ = losses.compute_loss(cfg, t, v, torch.tensor([0, 0, 1]))
        plain, _ = losses.compute_loss(cfg, t, v, SHARED_TEXT["item"])
        assert with_text.item() == pytest.approx(merged.item()), sets
        assert with_text.item() != pytest.approx(plain.item()), sets
