"""Configuration: one frozen dataclass, two named profiles, ``--set key=value`` overrides."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import numbers
from dataclasses import dataclass, fields

from repro.core.errors import ReproError
from repro.data.emoji import TRAIN_CAPTIONS
from repro.model.losses import LOSSES
from repro.towers.backbones import BACKBONES
from repro.towers.text import TEXT_TOWERS


#: The plateau (method.md section 3): a run is on it while the mean over the last
#: PLATEAU_WINDOW batches of cos(t, v+) - cos(t, hardest in-batch v-) is below PLATEAU_GAP;
#: it leaves it at the first optimizer step where that mean reaches PLATEAU_GAP.
PLATEAU_GAP = 0.02
PLATEAU_WINDOW = 20

#: Optimizer steps of a mini training run: 30 epochs of the names+keywords captions at batch
#: 128. A caption option with fewer captions trains for more epochs (:func:`epochs_for_steps`),
#: so that no option is judged by a run that stopped on the plateau (method.md section 3).
MINI_STEPS = 1020


def epochs_for_steps(n_captions: int, batch_size: int, steps: int = MINI_STEPS) -> int:
    """Epochs (of ``n_captions // batch_size`` drop-last batches) closest to ``steps``."""
    return max(1, round(steps / max(1, n_captions // batch_size)))


#: Version of what a finished run folder holds (``metrics.json``, and since 5 its per-query
#: ``test_ranks.json``, since 6 with each test image's tagging AP); finished runs of another
#: version are not reused.
METRICS_VERSION = 6


@dataclass(frozen=True)
class Config:
    profile: str = "mini"
    seed: int = 0
    # --- text side
    text_tower: str = "muse"            # repro.towers.text.TEXT_TOWERS: muse | mbert | e5
    mbert_id: str = "bert-base-multilingual-cased"  # hub id or a local directory
    mbert_pooling: str = "mean"         # mean over non-padding tokens (paper default) | cls
    mbert_download: bool = False        # may the hub be asked for the weights (never in CI)
    text_head: str = "mlp"              # mlp: Linear-ReLU-Linear | none: the tower's own space
    text_preprocess: str = "none"       # none | center_en: minus the English training captions'
                                        # mean feature, L2-renormalised (every language alike)
    # --- image side
    image_backbone: str = "efficientnet_lite0"  # frozen, ImageNet (repro.towers.backbones.BACKBONES)
    image_weights: str = "imagenet"     # imagenet | none (random init, for tests)
    # --- shared space
    embed_dim: int = 512
    head_hidden: int = 512              # hidden width of the 2-layer heads (mini: chosen on English val)
    # --- loss
    loss: str = "patr"                  # repro.model.losses.LOSSES: patr (M3 when lambda_tt > 0) | vsepp | infonce
    negative: str = "hardest"           # hardest | random in-batch negative (patr / M3)
    margin: float = 0.5                 # mu: a negative image must sit 60 degrees away
    margin_tt: float = 0.5              # mu_t for the text-text term of M3
    lambda_tt: float = 1.0              # M3 weight; 0 gives PATR
    vsepp_margin: float = 0.2
    vsepp_mode: str = "hardest"         # hardest (max violation) | sum
    vsepp_warmup_epochs: int = 0        # VSE++: first epochs on the sum of violations, then vsepp_mode
    tau: float = 0.05                   # InfoNCE temperature
    # --- optimisation
    epochs: int = 113                   # the best epoch on English val is kept (mini: MINI_STEPS
                                        # steps of the default captions)
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    threads: int = 1                    # CPU threads of a run: one (mini), so its bits do not
                                        # depend on the cores; 0: all cores (paper, on a GPU)
    device: str = "auto"                # auto (CUDA when available, else CPU) | cpu | cuda
    sample_per_image: bool = False      # False: an epoch visits every caption; True: each image once
    # --- data
    train_captions: str = "names"       # mini: English captions per training emoji (defaults sweep)
    mask_same_text: bool = True         # identical caption texts are never negatives (false: Table 2d's 'v1')
    emoji_split: str = "grouped"        # mini: grouped (no near-duplicates across splits) | random (Table 2d's 'v1')
    coco_root: str = ""                 # paper: folder with annotations/, train2014/, val2014/
    coco_val_images: int = 5000
    xtd10_root: str = ""                # default: $XLIR_XTD10_DIR, then the cache
    xtd10_sums: str = ""                # a SHA256SUMS for a fixture in XTD10's format (tests)
    allow_xtd10_leak: bool = False      # keep XTD10 images in training (to measure the leak)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    @property
    def arm(self) -> str:
        """Short name of the training variant (loss family, lambda, head)."""
        return LOSSES[self.loss].arm(self) + (" text_head=none" if self.text_head == "none" else "")


PROFILES = {
    "mini": {},
    "paper": {
        "image_backbone": "resnet152", "image_weights": "imagenet", "epochs": 30,
        "batch_size": 256, "head_hidden": 1024,
        "mbert_download": True, "threads": 0,
    },
}

#: The allowed values of the keys with a fixed set; the registries' keys are read at each check,
#: so that a tower, backbone or loss registered later is allowed too.
CHOICES = {
    "profile": ("mini", "paper"), "text_tower": TEXT_TOWERS, "text_head": ("mlp", "none"),
    "text_preprocess": ("none", "center_en"),
    "mbert_pooling": ("mean", "cls"), "loss": LOSSES,
    "negative": ("hardest", "random"), "vsepp_mode": ("hardest", "sum"),
    "image_backbone": BACKBONES,
    "image_weights": ("imagenet", "none"),
    "device": ("auto", "cpu", "cuda"),
    "train_captions": TRAIN_CAPTIONS,
    "emoji_split": ("grouped", "random"),
}


def _parse_value(key: str, raw: str, kind):
    if kind is bool:
        if raw.lower() in ("1", "true", "yes"):
            return True
        if raw.lower() in ("0", "false", "no"):
            return False
        raise ReproError(f"--set {key}={raw}: expected true or false")
    try:
        return kind(raw)
    except ValueError:
        raise ReproError(f"--set {key}={raw}: expected a {kind.__name__}") from None


def make_config(profile: str = "mini", overrides=(), **kwargs) -> Config:
    """A profile's config with ``key=value`` strings and keyword overrides applied, checked."""
    if profile not in PROFILES:
        raise ReproError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    types = {f.name: type(f.default) for f in fields(Config)}
    values = dict(PROFILES[profile], profile=profile)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ReproError(f"--set {item}: expected KEY=VALUE")
        if key not in types:
            close = difflib.get_close_matches(key, types, n=3, cutoff=0.6)
            hint = (f"; did you mean {' or '.join(close)}?" if close
                    else "; the keys are the fields of repro/config.py (docs/cli.md)")
            raise ReproError(f"--set {item}: unknown config key {key!r}{hint}")
        values[key] = _parse_value(key, raw, types[key])
    values.update(kwargs)
    cfg = Config(**values)
    check(cfg)
    return cfg


def check_seed(seed: int) -> None:
    """A seed NumPy, torch and ``random`` all accept, else a one-line error."""
    if not 0 <= seed < 2**32:
        raise ReproError(f"config seed={seed}: must be between 0 and 2**32 - 1")


def check_seeds(seeds, option: str = "--seeds") -> tuple[int, ...]:
    """The seeds of a grid as a tuple, in their order: a non-empty set of integers that
    :func:`check_seed` accepts, else a one-line error naming ``option``. A seed given twice
    would pair a run with itself in every paired table (a spread of 0, p = 0, a verdict from
    one run)."""
    seeds = tuple(seeds)
    given = " ".join(map(str, seeds))
    if not seeds:
        raise ReproError(f"{option}: no seed given; give one or more distinct seeds (two or "
                         "more for a spread and paired tests)")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ReproError(f"{option} {given}: seed {seed!r} is not an integer")
        try:
            check_seed(seed)
        except ReproError as exc:
            raise ReproError(f"{option} {given}: {exc}") from None
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise ReproError(f"{option} {given}: seed {', '.join(map(str, twice))} given more than "
                         "once; the seeds are a set (a run paired with itself has no spread "
                         "and would give p = 0)")
    return tuple(int(s) for s in seeds)


#: The range of every numeric key: (low, high, what the rule says); a value must be finite and
#: inside it. Cosine distances lie in [0, 2], so a margin outside it makes its hinge constant.
RANGES = {
    "lr": (0.0, None, "finite and > 0"),
    "weight_decay": (0.0, None, "finite and >= 0"),
    "tau": (0.0, None, "finite and > 0"),
    "lambda_tt": (0.0, None, "finite and >= 0 (0 is PATR)"),
    "margin": (0.0, 2.0, "between 0 and 2 (a cosine distance)"),
    "margin_tt": (0.0, 2.0, "between 0 and 2 (a cosine distance)"),
    "vsepp_margin": (0.0, 2.0, "between 0 and 2 (a difference of cosines)"),
}
#: Keys whose value must be strictly above the range's low end.
POSITIVE = ("lr", "tau")


def check(cfg: Config) -> None:
    """Every value of ``cfg`` in its range, else a one-line error naming the key, the value
    and the rule."""
    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise ReproError(f"config {key}={getattr(cfg, key)!r}: expected one of "
                             f"{', '.join(allowed)}")
    for key, (low, high, rule) in RANGES.items():
        value = getattr(cfg, key)
        inside = (math.isfinite(value) and value >= low and (high is None or value <= high)
                  and not (key in POSITIVE and value == low))
        if not inside:
            raise ReproError(f"config {key}={value!r}: must be {rule}")
    if cfg.vsepp_warmup_epochs < 0:
        raise ReproError(f"config vsepp_warmup_epochs={cfg.vsepp_warmup_epochs}: must be >= 0")
    check_seed(cfg.seed)
    for key in ("epochs", "batch_size", "embed_dim", "head_hidden", "coco_val_images"):
        if getattr(cfg, key) < 1:
            raise ReproError(f"config {key}={getattr(cfg, key)}: must be >= 1")
    if cfg.batch_size < 2:
        raise ReproError("config batch_size must be >= 2: in-batch negatives need a second pair")
    if cfg.threads < 0:
        raise ReproError(f"config threads={cfg.threads}: must be >= 1, or 0 for all cores")


def config_from_json(text: str) -> Config:
    """The config a ``config.json`` holds; a key added to :class:`Config` after the file was
    written takes its default (every key is added with the default that keeps the old
    behaviour), so equal configs compare equal whatever the version that wrote them."""
    values = json.loads(text)
    known = {f.name for f in fields(Config)}
    cfg = Config(**{k: v for k, v in values.items() if k in known})
    check(cfg)
    return cfg
