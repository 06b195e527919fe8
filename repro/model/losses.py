"""Losses on a batch of B (image, English caption) pairs, all on L2-normalised embeddings.

Notation: ``t`` (B, d) captions, ``v`` (B, d) images, row k of each is a positive pair;
``neg`` (B, B) bool the negative mask of :func:`negative_mask`: column b may serve as a negative
for row a only when the two pairs belong to different items *and* carry different caption texts
(identical texts of two items are a false negative). The mask is built once per batch by
:func:`compute_loss` and every loss uses it. s(x, y) is the cosine, d(x, y) = 1 - s(x, y).
Every loss is a mean over the B anchors, so its scale does not depend on B.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from repro.core.registry import Registry


def negative_mask(item: torch.Tensor, text_id: torch.Tensor | None = None) -> torch.Tensor:
    """(B, B) bool: True where column b may serve as a negative for row a: another item and,
    when ``text_id`` (B,) is given, another caption text (:mod:`repro.data.textids`)."""
    neg = item[:, None] != item[None, :]
    if text_id is not None:
        neg &= text_id[:, None] != text_id[None, :]
    return neg


def pick_negatives(sim: torch.Tensor, neg: torch.Tensor, how: str = "hardest",
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One negative column per row of ``sim`` (B, B).

    ``hardest``: the most similar allowed column; ``random``: uniform among allowed columns
    (drawn with ``generator``). Returns (index (B,), has_negative (B,) bool).
    """
    has = neg.any(dim=1)
    if how == "hardest":
        masked = sim.detach().masked_fill(~neg, float("-inf"))
        idx = masked.argmax(dim=1)
    elif how == "random":
        weights = neg.float() + (~has)[:, None].float()  # rows without negatives: any column
        # drawn on the CPU with the epoch's CPU generator: the same draws on every device
        idx = torch.multinomial(weights.cpu(), 1, generator=generator).squeeze(1).to(sim.device)
    else:
        raise ValueError(f"unknown negative choice {how!r}")
    return idx, has


def diagnostics(sim: torch.Tensor, neg: torch.Tensor) -> dict:
    """Plateau diagnostics of a batch's text-image cosines ``sim`` (B, B), positives on the
    diagonal: mean cos(t, v+), mean cos(t, hardest v-) over anchors that have a negative, and
    ``win``, the share of those anchors whose positive beats every in-batch negative (in-batch
    text-to-image R@1). Scalars, detached."""
    sim = sim.detach()
    hard = sim.masked_fill(~neg, float("-inf")).max(dim=1).values
    has = neg.any(dim=1)
    pos = sim.diagonal()
    if not has.any():
        zero = pos.new_zeros(())
        return {"cos_pos": pos.mean(), "cos_neg": zero, "win": zero}
    return {"cos_pos": pos.mean(), "cos_neg": hard[has].mean(),
            "win": (pos[has] > hard[has]).float().mean()}


def patr_m3(t: torch.Tensor, v: torch.Tensor, neg: torch.Tensor, margin: float = 0.5,
            margin_tt: float = 0.5, lambda_tt: float = 1.0, negative: str = "hardest",
            generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    """PATR and its M3 extension.

    L_PATR = d(t, v+) + [mu - d(t, v-)]_+
    L_M3   = L_PATR + lambda * [mu_t - d(t, t-)]_+ ,  t- = the caption paired with v-

    The pull term d(t, v+) acts whatever the negatives do; v- is the hardest (most similar)
    allowed in-batch image (``neg``), or a random one; t- then is another item's caption with
    another text. ``lambda_tt = 0`` gives PATR.
    Returns (loss, :func:`diagnostics`: always against the hardest negative, whichever
    negative the loss used, so that plateau diagnostics compare like with like).
    """
    sim = t @ v.T                                  # sim[a, b] = s(t_a, v_b)
    idx, has = pick_negatives(sim, neg, negative, generator)
    rows = torch.arange(t.shape[0], device=t.device)
    pos_cos = sim[rows, rows]
    neg_cos = sim[rows, idx]
    loss = (1 - pos_cos) + has * F.relu(margin - (1 - neg_cos))
    if lambda_tt:
        tt_cos = (t * t[idx]).sum(dim=1)
        loss = loss + lambda_tt * has * F.relu(margin_tt - (1 - tt_cos))
    return loss.mean(), diagnostics(sim, neg)


def vsepp(t: torch.Tensor, v: torch.Tensor, neg: torch.Tensor, margin: float = 0.2,
          mode: str = "hardest") -> tuple[torch.Tensor, dict]:
    """VSE++ bidirectional hinge (Faghri et al.).

    For each positive pair (v_a, t_a):
      sum over negatives b of [m - s(v_a, t_a) + s(v_a, t_b)]_+ + [m - s(v_a, t_a) + s(v_b, t_a)]_+
    or, with ``mode="hardest"``, only the largest term of each direction (max violation).
    """
    sim = t @ v.T
    pos = sim.diagonal()
    cost_img = F.relu(margin - pos[:, None] + sim).masked_fill(~neg, 0)   # t_a vs image v_b
    cost_txt = F.relu(margin - pos[None, :] + sim).masked_fill(~neg, 0)   # v_b vs caption t_a
    if mode == "hardest":
        per_anchor = cost_img.max(dim=1).values + cost_txt.max(dim=0).values
    elif mode == "sum":
        per_anchor = cost_img.sum(dim=1) + cost_txt.sum(dim=0)
    else:
        raise ValueError(f"unknown VSE++ mode {mode!r}")
    return per_anchor.mean(), diagnostics(sim, neg)


def infonce(t: torch.Tensor, v: torch.Tensor, neg: torch.Tensor,
            tau: float = 0.05) -> tuple[torch.Tensor, dict]:
    """Symmetric contrastive loss of CLIP over the in-batch similarity matrix.

    L = 1/2 [CE(s(t_a, v_.) / tau, a) + CE(s(t_., v_a) / tau, a)], where the columns that
    are no negatives (``~neg``: the same item or the same text) are removed from the softmax.
    """
    sim = t @ v.T
    same = ~neg
    eye = torch.eye(t.shape[0], dtype=torch.bool, device=t.device)
    logits = (sim / tau).masked_fill(same & ~eye, float("-inf"))
    target = torch.arange(t.shape[0], device=t.device)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    return loss, diagnostics(sim, ~same)


# ----------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Loss:
    """A loss of :data:`LOSSES`.

    ``fn(cfg, t, v, neg, generator, epoch) -> (loss, diagnostics)`` reads its hyperparameters
    from ``cfg`` (the config keys ``keys``); ``epoch`` (1-based, or None outside training) is
    there for schedules such as VSE++'s warm-up. ``label(cfg)`` writes its hyperparameters as
    a table does (a list of parts), ``arm(cfg)`` names the variant ("M3", "VSE++(hardest)").
    """

    name: str      # the config value: --set loss=NAME
    fn: Callable
    keys: tuple
    label: Callable
    arm: Callable


#: name -> :class:`Loss` (:func:`register_loss`); the config's choices of ``loss`` derive from it.
LOSSES = Registry("loss")
register_loss = LOSSES.register


def _patr_m3(cfg, t, v, neg, generator=None, epoch=None):
    return patr_m3(t, v, neg, cfg.margin, cfg.margin_tt, cfg.lambda_tt, cfg.negative, generator)


def _vsepp(cfg, t, v, neg, generator=None, epoch=None):
    """The first ``vsepp_warmup_epochs`` epochs on the sum of violations, then ``vsepp_mode``."""
    warming = epoch is not None and epoch <= cfg.vsepp_warmup_epochs
    return vsepp(t, v, neg, cfg.vsepp_margin, "sum" if warming else cfg.vsepp_mode)


def _infonce(cfg, t, v, neg, generator=None, epoch=None):
    return infonce(t, v, neg, cfg.tau)


register_loss(Loss(
    "patr", _patr_m3, ("margin", "margin_tt", "lambda_tt", "negative"),
    label=lambda cfg: [f"λ {cfg.lambda_tt:g}", f"μ_t {cfg.margin_tt:g}"] if cfg.lambda_tt else [],
    arm=lambda cfg: "M3" if cfg.lambda_tt > 0 else "PATR"))
register_loss(Loss(
    "vsepp", _vsepp, ("vsepp_margin", "vsepp_mode", "vsepp_warmup_epochs"),
    label=lambda cfg: [f"margin {cfg.vsepp_margin:g}", f"{cfg.vsepp_warmup_epochs} warm-up epochs"],
    arm=lambda cfg: f"VSE++({cfg.vsepp_mode})"))
register_loss(Loss("infonce", _infonce, ("tau",), label=lambda cfg: [f"τ {cfg.tau:g}"],
                   arm=lambda cfg: "InfoNCE"))


def compute_loss(cfg, t, v, item, text_id=None, generator=None, epoch=None):
    """Build the batch's negative mask once (:func:`negative_mask`) and apply ``cfg.loss``
    (:data:`LOSSES`); returns (loss, diagnostics). ``text_id`` (B,) or None (no text mask:
    Table 2d's 'v1' protocol); ``epoch``: the training epoch (1-based), None outside
    training."""
    return LOSSES.lookup(cfg.loss).fn(cfg, t, v, negative_mask(item, text_id), generator, epoch)
