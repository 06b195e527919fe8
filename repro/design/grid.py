"""The experiment design in one place: arms, their chosen settings, seeds, the lambda curve,
the long runs and the protocol rows of Table 2d.

The arms are a registry (:data:`ARMS`); the towers are those of
:data:`repro.towers.text.TEXT_TOWERS`. The orchestrator (:mod:`repro.experiments.reproduce`), the
report modules and the benchmarks read this module; it reads none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from repro.config import MINI_STEPS, epochs_for_steps
from repro.core.errors import ReproError
from repro.core.registry import Registry
from repro.model.losses import LOSSES
from repro.towers.text import TEXT_TOWERS, text_tower


@dataclass(frozen=True)
class Arm:
    """A training variant of the grid: the config overrides that define it and its own
    settings, chosen on English validation (applied after them; later overrides win)."""

    name: str
    defines: tuple
    settings: tuple = ()

    @property
    def overrides(self) -> list[str]:
        return [*self.defines, *self.settings]


#: name -> :class:`Arm`, in the order tables show them (:func:`register_arm`).
#: The grid, the tables and the findings read the arms from it.
ARMS = Registry("arm")
register_arm = ARMS.register


# PATR and M3 are the paper's ablation (lambda_tt 0 vs 1); the other three are the baselines
# beyond the paper. Each arm's settings are the choice of ``python -m repro.bench defaults``
# (five seeds, the bootstrap choice rule of :mod:`repro.experiments.sweep`; the record, with
# every setting tried, is docs/sweeps/defaults_mini.json, and a test checks these against it).
# M3's own optimum is lambda 0.1 (the paper's lambda 1 is the matched pairs' M3).
register_arm(Arm("PATR", ("loss=patr", "lambda_tt=0"), ("lr=0.0003",)))
register_arm(Arm("M3", ("loss=patr", "lambda_tt=1"), ("lr=0.0003", "lambda_tt=0.1")))
register_arm(Arm("PATR text_head=none", ("loss=patr", "lambda_tt=0", "text_head=none"),
                 ("lr=0.003",)))
register_arm(Arm("InfoNCE", ("loss=infonce",), ("lr=0.001", "tau=0.1")))
register_arm(Arm("VSE++", ("loss=vsepp",),
                 ("lr=0.001", "vsepp_margin=0.1", "vsepp_warmup_epochs=5")))

#: The paired comparisons of the main arms (Tables 2b and 3b, the findings): (a, b) is a - b.
COMPARISONS = (("M3", "PATR"), ("M3", "PATR text_head=none"), ("InfoNCE", "M3"))


#: The ablation proper (Tables 2 and 2c, Figure 3): PATR and the paper's M3 (lambda 1) at each
#: of these learning rates, everything else equal, so that M3 - PATR changes one thing. The
#: learning rates are the competitive ones of the defaults sweep for either arm.
MATCHED_LRS = (3e-4, 1e-3)
#: Figure 3's lambdas at every matched learning rate (0: PATR, 1: the paper's M3).
CURVE_LAMBDAS = (0.0, 0.03, 0.1, 0.3, 1.0, 3.0)
#: The lambda curve's points other than 0 and 1 run on the first seeds only (budget).
LAMBDA_SEEDS = (0, 1, 2)


def lr_label(lr: float) -> str:
    """3e-4, 1e-3: a learning rate as the tables write it."""
    return f"{lr:.0e}".replace("e-0", "e-")


def settings_label(cfg) -> str:
    """An arm's own hyperparameters as a table says them: 'λ 1, μ_t 0.5, lr 3e-4'."""
    return ", ".join(LOSSES[cfg.loss].label(cfg) + [f"lr {lr_label(cfg.lr)}"])


def curve_arm(lam: float, lr: float) -> str:
    """The grid arm of the lambda curve at ``lam`` and ``lr`` (0: PATR, 1: the paper's M3)."""
    return f"PATR @lr {lr_label(lr)}" if lam == 0 else f"M3 λ={lam:g} @lr {lr_label(lr)}"


def matched_pair(lr: float) -> tuple[str, str]:
    """(PATR, the paper's M3) at ``lr``: the ablation's pair."""
    return curve_arm(0.0, lr), curve_arm(1.0, lr)


#: Grid arm -> (lambda, learning rate) of every point of the curves.
CURVE_ARMS = {curve_arm(lam, lr): (lam, lr) for lr in MATCHED_LRS for lam in CURVE_LAMBDAS}


def curve_overrides(arm: str) -> list[str]:
    """The config of a point of a lambda curve: the paper's M3 at its lambda and learning
    rate (lambda 0 is PATR; mu_t has no effect there)."""
    lam, lr = CURVE_ARMS[arm]
    return ["loss=patr", f"lambda_tt={lam:g}", "margin_tt=0.5", f"lr={lr:g}"]


#: Table 2c and Figure 4: twice the default training length of each matched pair, continued
#: from the default-length run of the same seed (bit-identical to training that long).
LONG_ARMS = {f"{arm} 2x epochs": arm for lr in MATCHED_LRS for arm in matched_pair(lr)}

#: English training captions of each caption option (the shipped asset; checked by a test).
CAPTION_COUNTS = {"names+keywords": 4434, "names": 1249, "names+unique_keywords": 2189}
#: The caption option the defaults sweep chose (also the config default) and the other one
#: Table 2d trains on.
CHOSEN_CAPTIONS = "names"
OTHER_CAPTIONS = "names+keywords"


def caption_epochs(option: str, batch_size: int = 128) -> int:
    """Epochs of ``option`` for :data:`repro.config.MINI_STEPS` optimizer steps."""
    return epochs_for_steps(CAPTION_COUNTS[option], batch_size, MINI_STEPS)


#: Table 2d: which protocol choice decides the M3 vs PATR verdict. Every row is a matched pair
#: at PROTOCOL_LR: PATR and the paper's M3 differ in lambda only. The protocol registry, name ->
#: (what changes, overrides applied after the pair's settings, the caption option whose epochs
#: it trains for the same optimizer steps as the reference, or None). Its names are those of
#: docs/history.md: the reference (every other table's protocol) is the matched pair itself;
#: "v1" is kept for comparison: all English keywords as captions, identical texts of two emoji
#: as negatives, a random split that lets near-duplicates straddle it, lr 1e-3, hidden width 512.
PROTOCOL_LR = 1e-3
REFERENCE_PROTOCOL = "v2"
PROTOCOLS = {
    REFERENCE_PROTOCOL: ("the protocol of every other table", [], None),
    "v1": ("keyword captions, no text mask, random split, v1 settings",
           ["train_captions=names+keywords", "mask_same_text=false", "emoji_split=random",
            "lr=0.001", "head_hidden=512"], "names+keywords"),
    "v2, head 1024": ("hidden width 1024 instead of 512", ["head_hidden=1024"], None),
    f"v2, {OTHER_CAPTIONS}": (f"training captions: {OTHER_CAPTIONS}",
                              [f"train_captions={OTHER_CAPTIONS}"], OTHER_CAPTIONS),
}
#: Grid arm name -> (base arm, protocol) for the protocol rows other than the reference.
PROTOCOL_ARMS = {f"{arm} [{p}]": (arm, p) for p in PROTOCOLS if p != REFERENCE_PROTOCOL
                 for arm in ("PATR", "M3")}

#: Table 5's raw-feature rows of a tower with an output preprocessing: the arm on the tower's
#: raw features (:data:`TOWER_SETTINGS`), at that arm's settings otherwise.
RAW_ARMS = {"PATR raw features": "PATR", "M3 raw features": "M3"}
RAW_SEEDS = (0, 1, 2)
#: Table 2c's continued runs use the first seeds only (budget).
LONG_SEEDS = (0, 1, 2)

SEEDS = (0, 1, 2, 3, 4)


def all_arms() -> tuple:
    """Every arm of the grid, in grid order: the registered arms, the lambda curves, the long
    runs, the protocol rows and the raw-feature rows."""
    return (*ARMS, *CURVE_ARMS, *LONG_ARMS, *PROTOCOL_ARMS, *RAW_ARMS)


def grid_towers() -> tuple:
    """The grid's text towers: every registered one, in registry order."""
    return tuple(TEXT_TOWERS)


#: A tower's own settings per arm, applied after the arm's (later overrides win). A second
#: tower trains every arm at the settings chosen for the default tower, so that the tower
#: table changes the tower only; E5's own choice is its output preprocessing (centred on the
#: English training mean; the raw-feature rows show the other).
TOWER_SETTINGS = {
    "e5": {"PATR raw features": ["text_preprocess=none"],
           "M3 raw features": ["text_preprocess=none"]},
}
#: The arms a tower runs (default: every arm but the raw-feature rows). E5 is a second real
#: tower for the tower axis (budget): PATR and M3 at their own settings (which differ in
#: lambda only: a matched pair on centred features) and the raw-feature rows (another).
TOWER_ARMS = {"e5": ("PATR", "M3", *RAW_ARMS)}
#: A tower's settings for every arm it runs, before :data:`TOWER_SETTINGS`.
TOWER_DEFAULTS = {"e5": ["text_preprocess=center_en"]}


def tower_excluded(tower: str, profile: str) -> str | None:
    """Why ``tower`` is not part of ``profile``'s grid (its registry entry), or None when it is."""
    spec = text_tower(tower)
    return None if spec.profiles is None or profile in spec.profiles else spec.why_not_other_profiles


def tower_overrides(tower: str) -> list[str]:
    """The config overrides of ``tower``'s task: the tower, and its own settings of M3 (the
    main tables' arm: they decide the features of the task it builds first)."""
    return [f"text_tower={tower}"] + tower_settings(tower, "M3")


def tower_settings(tower: str | None, arm: str) -> list[str]:
    """``tower``'s own overrides of ``arm`` (:data:`TOWER_DEFAULTS`, then
    :data:`TOWER_SETTINGS`; later overrides win)."""
    return TOWER_DEFAULTS.get(tower, []) + TOWER_SETTINGS.get(tower, {}).get(arm, [])


def tower_arms(tower: str) -> tuple:
    """The arms of :func:`all_arms` that ``tower`` runs, in grid order."""
    return TOWER_ARMS.get(tower, tuple(a for a in all_arms() if a not in RAW_ARMS))


def protocol_arm(arm: str, protocol: str) -> str:
    """The grid arm of ``arm`` (PATR or M3) under ``protocol`` (the reference: the matched
    pair's arm at :data:`PROTOCOL_LR`)."""
    if protocol == REFERENCE_PROTOCOL:
        return matched_pair(PROTOCOL_LR)[("PATR", "M3").index(arm)]
    return f"{arm} [{protocol}]"


def arm_overrides(arm: str, base_epochs: int, tower: str | None = None) -> list[str]:
    """Config overrides of an arm of :func:`all_arms` (``base_epochs``: the default length),
    followed by ``tower``'s own settings for it (:func:`tower_settings`)."""
    return _arm_overrides(arm, base_epochs) + tower_settings(tower, arm)


def _arm_overrides(arm: str, base_epochs: int) -> list[str]:
    if arm in RAW_ARMS:
        return ARMS[RAW_ARMS[arm]].overrides
    if arm in ARMS:
        return ARMS[arm].overrides
    if arm in CURVE_ARMS:
        return curve_overrides(arm)
    if arm in PROTOCOL_ARMS:
        base, protocol = PROTOCOL_ARMS[arm]
        _, sets, captions = PROTOCOLS[protocol]
        pair = curve_overrides(protocol_arm(base, REFERENCE_PROTOCOL)) + sets
        if captions is None:
            return pair
        # as many optimizer steps as the reference run of the same length (``base_epochs``)
        epochs = round(base_epochs * caption_epochs(captions) / caption_epochs(CHOSEN_CAPTIONS))
        return pair + [f"epochs={max(1, epochs)}"]
    if arm not in LONG_ARMS:
        raise ReproError(f"unknown arm {arm!r}; expected one of {', '.join(all_arms())}")
    return _arm_overrides(LONG_ARMS[arm], base_epochs) + [f"epochs={2 * base_epochs}"]


def arm_seeds(arm: str, seeds) -> tuple:
    """The lambda curve's extra points, the raw-feature rows and the continued runs use the
    first seeds only (budget); the rest all."""
    if arm in CURVE_ARMS and CURVE_ARMS[arm][0] not in (0.0, 1.0):
        return tuple(s for s in seeds if s in LAMBDA_SEEDS)
    if arm in RAW_ARMS:
        return tuple(s for s in seeds if s in RAW_SEEDS)
    if arm in LONG_ARMS:
        return tuple(s for s in seeds if s in LONG_SEEDS)
    return tuple(seeds)
