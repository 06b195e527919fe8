"""The primary endpoints, declared before the runs: one per claim the package answers, each a
paired difference of one named metric, mean over the ten non-English languages. Holm's
correction runs over these endpoints only; every other cell of ``paper_tables/`` is an
estimate with an interval and no verdict word.

An endpoint compares arm ``a`` with arm ``b`` on ``tower`` (``b`` on ``b_tower`` for the
tower axis), or arm ``a`` with chance (``b`` None). ``variants`` are the same comparison at
the settings the defaults sweep could not separate from its choice (:data:`repro.design.
NOISE_M3_SETTINGS`, :data:`~repro.design.NOISE_PATR_LRS`, :data:`~repro.design.
NOISE_CAPTIONS`): they are reported beside the endpoint as estimates at its Holm level, and
where they disagree with it, the answer is the range.
"""

from __future__ import annotations

from dataclasses import dataclass

from repro.data.paper import LANGS
from repro.design import (ARMS, NOISE_CAPTIONS, NOISE_M3_SETTINGS, NOISE_PATR_LRS, PROTOCOL_LR,
                          Arm, curve_arm, lr_label, matched_pair, protocol_arm)

NON_EN = tuple(lang for lang in LANGS if lang != "en")
#: The effect the seeds are sized for (points of the endpoint's metric) and the power.
TARGET_EFFECT = 1.0
TARGET_POWER = 0.8


@dataclass(frozen=True)
class Variant:
    """The endpoint's comparison at other settings: ``a`` − ``b``, labelled by ``setting``."""

    setting: str
    a: Arm
    b: Arm


@dataclass(frozen=True)
class Endpoint:
    """One primary endpoint: ``claim`` is the question it answers, ``setting`` the settings of
    ``a`` and ``b``; the metric is ``key`` (a metrics.json retrieval key, or ``mAP`` for
    tagging) averaged over ``langs``."""

    name: str
    claim: str
    setting: str
    tower: str
    a: Arm
    b: Arm | None
    key: str
    b_tower: str | None = None
    langs: tuple = NON_EN
    variants: tuple = ()

    @property
    def arms(self) -> tuple:
        """Every (tower, arm) the endpoint and its variants read."""
        out = [(self.tower, self.a)] + ([(self.b_tower or self.tower, self.b)] if self.b else [])
        for v in self.variants:
            out += [(self.tower, v.a), (self.tower, v.b)]
        return tuple(dict.fromkeys(out))


def _text_term(lr: float) -> Endpoint:
    patr, m3 = matched_pair(lr)
    variants = ()
    if lr == PROTOCOL_LR:  # the caption stage of the sweep compared its options at this lr
        variants = tuple(Variant(f"captions {c}", protocol_arm("M3", f"v2, {c}"),
                                 protocol_arm("PATR", f"v2, {c}")) for c in NOISE_CAPTIONS)
    return Endpoint(f"text term @lr {lr_label(lr)}",
                    "Does M3's text term help, everything else equal?",
                    f"M3 (λ 1) − PATR, both lr {lr_label(lr)}, captions names", "muse", m3, patr,
                    "t2i_R@10", variants=variants)


def _own_optimum() -> Endpoint:
    m3s = [("λ 0.1, lr 3e-4 (chosen)", ARMS["M3"])] + [
        (f"λ {lam:g}, lr {lr_label(lr)}", curve_arm(lam, lr)) for lam, lr in NOISE_M3_SETTINGS]
    patrs = [("lr 3e-4 (chosen)", ARMS["PATR"])] + [
        (f"lr {lr_label(lr)}", curve_arm(0.0, lr)) for lr in NOISE_PATR_LRS]
    variants = tuple(Variant(f"M3 {ms}, PATR {ps}", m3, patr) for ms, m3 in m3s
                     for ps, patr in patrs if (m3, patr) != (ARMS["M3"], ARMS["PATR"]))
    return Endpoint("own optimum", "Is M3 better than PATR, each at its own validation optimum?",
                    "M3 λ 0.1, lr 3e-4 − PATR lr 3e-4", "muse", ARMS["M3"], ARMS["PATR"],
                    "t2i_R@10", variants=variants)


#: The declared endpoints, in the order tables and findings show them.
ENDPOINTS = (
    _text_term(3e-4),
    _text_term(1e-3),
    _own_optimum(),
    Endpoint("tagging vs chance", "Does zero-shot tagging beat chance in the other languages?",
             "M3 tagging mAP − the expected AP of a random ranking", "muse", ARMS["M3"], None,
             "mAP"),
    Endpoint("tower axis", "Does the text tower change zero-shot retrieval (E5 vs mUSE)?",
             "M3 on E5 − M3 on mUSE, each at M3's settings", "e5", ARMS["M3"], ARMS["M3"],
             "t2i_R@10", b_tower="muse"),
)
