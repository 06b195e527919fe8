"""The experiment design as data: every arm of the grid is an :class:`Arm`, every tower's
policy a :class:`TowerPlan`, the protocols of Table 2d are :class:`Protocol` records.

An arm's config, its label (what tables print and its run folder's name) and the seeds it runs
derive from its typed fields; nothing reads a label back. :func:`grid_arms` lists every arm:
the registered main arms (:data:`ARMS`), the λ curves, the long runs, the protocol rows and the
raw-feature rows. :data:`ENDPOINTS` declares the primary endpoints (the only comparisons
that get a verdict). The orchestrator (:mod:`repro.experiments.reproduce`), the report modules and
the benchmarks read this module; it reads none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from repro.config import MINI_STEPS, epochs_for_steps
from repro.core.errors import ReproError
from repro.core.registry import Registry
from repro.data.emoji import TRAIN_CAPTIONS
from repro.data.paper import LANGS
from repro.model.losses import LOSSES
from repro.towers.text import TEXT_TOWERS, text_tower

#: The seeds of the grid. The arms of the primary endpoints (:data:`repro.design.ENDPOINTS`)
#: run on all of them: the number comes from a power calculation on the per-seed and per-item
#: variances of the five-seed grid (docs/method.md, "Enough replicates"). The other arms run
#: on the first five (:data:`BASE_SEEDS`) or the first three (:data:`FIRST_SEEDS`) (budget).
SEEDS = tuple(range(20))
BASE_SEEDS = (0, 1, 2, 3, 4)
FIRST_SEEDS = (0, 1, 2)

#: The ablation proper (Tables 2 and 2c, Figure 3): PATR and the paper's M3 (λ 1) at each of
#: these learning rates, everything else equal, so that M3 − PATR changes one thing. The
#: learning rates are the competitive ones of the defaults sweep for either arm.
MATCHED_LRS = (3e-4, 1e-3)
#: Figure 3's λ at every matched learning rate (0: PATR, 1: the paper's M3); the points other
#: than 0 and 1 run on :data:`FIRST_SEEDS`.
CURVE_LAMBDAS = (0.0, 0.03, 0.1, 0.3, 1.0, 3.0)
#: The λ of the paper's M3 and of PATR (M3 without its text term).
PAPER_LAMBDA, PATR_LAMBDA = 1.0, 0.0


@dataclass(frozen=True)
class Arm:
    """One arm of the grid: a training configuration, run at its seeds on every tower whose
    :class:`TowerPlan` takes it.

    A main arm (registered in :data:`ARMS`) is defined by ``defines`` (the config overrides
    that make it the method it is) and ``settings`` (its own hyperparameters, chosen on English
    validation; applied after them). A derived arm starts from ``base``'s overrides and adds its
    own ``defines``; its typed fields say what it is:

    - ``lam``, ``lr``: a point of the λ curve (the paper's M3 at λ, μ_t 0.5, learning rate lr);
    - ``length``: a multiple of the default training length (continues ``base``'s run);
    - ``protocol``: a row of Table 2d (``base`` is the matched pair's arm at its learning rate);
    - ``raw_features``: ``base`` on the tower's raw features (no output preprocessing);
    - ``seeds``: the only seeds it runs (None: every seed of the grid, for the arms of the
      primary endpoints; the default: :data:`BASE_SEEDS`).

    ``method`` is the main arm the derived arm is a form of (PATR or M3); ``name`` is its label.
    """

    name: str
    defines: tuple = ()
    settings: tuple = ()
    method: str = ""
    base: Arm | None = None
    lam: float | None = None
    lr: float | None = None
    length: int = 1
    protocol: str | None = None
    raw_features: bool = False
    seeds: tuple | None = BASE_SEEDS

    def __post_init__(self):
        if not self.method:
            object.__setattr__(self, "method", self.base.method if self.base else self.name)

    @property
    def kind(self) -> str:
        """main, curve, long, protocol or raw."""
        if self.raw_features:
            return "raw"
        if self.protocol is not None:
            return "protocol"
        if self.length > 1:
            return "long"
        return "curve" if self.lam is not None else "main"

    @property
    def continues(self) -> Arm | None:
        """The arm whose default-length run a longer run continues (bit-identical to training
        that long from the start), else None."""
        return self.base if self.length > 1 else None

    def overrides(self, base_epochs: int | None = None) -> list[str]:
        """Config overrides of this arm (``base_epochs``: the default training length, needed
        by the arms whose length is not the default)."""
        own = self.base.overrides(base_epochs) if self.base is not None else []
        own = [*own, *self.defines, *self.settings]
        epochs = self.epochs(base_epochs)
        return own + ([f"epochs={epochs}"] if epochs is not None else [])

    def epochs(self, base_epochs: int) -> int | None:
        """Its training length when it is not the default, else None: ``length`` times the
        default, or a protocol's caption option at the default's optimizer steps."""
        captions = PROTOCOLS[self.protocol].captions if self.protocol is not None else None
        if self.length == 1 and captions is None:
            return None
        if base_epochs is None:
            raise ReproError(f"arm {self.name!r}: its length needs the default length")
        if self.length > 1:
            return self.length * base_epochs
        return max(1, round(base_epochs * caption_epochs(captions)
                            / caption_epochs(CHOSEN_CAPTIONS)))

    def seeds_of(self, seeds) -> tuple:
        """The seeds of ``seeds`` this arm runs on, in their order."""
        return tuple(s for s in seeds if self.seeds is None or s in self.seeds)


#: name -> main :class:`Arm`, in the order tables show them (:func:`register_arm`).
ARMS = Registry("arm")
register_arm = ARMS.register

# PATR and M3 are the paper's ablation (lambda_tt 0 vs 1); the other three are the baselines
# beyond the paper. Each arm's settings are the choice of ``python -m repro.bench defaults``
# (five seeds, the bootstrap choice rule of :mod:`repro.experiments.sweep`; the record, with
# every setting tried, is docs/sweeps/defaults_mini.json, and a test checks these against it).
# M3's own optimum is lambda 0.1 (the paper's lambda 1 is the matched pairs' M3).
register_arm(Arm("PATR", ("loss=patr", "lambda_tt=0"), ("lr=0.0003",), seeds=None))
register_arm(Arm("M3", ("loss=patr", "lambda_tt=1"), ("lr=0.0003", "lambda_tt=0.1"), seeds=None))
register_arm(Arm("PATR text_head=none", ("loss=patr", "lambda_tt=0", "text_head=none"),
                 ("lr=0.003",)))
register_arm(Arm("InfoNCE", ("loss=infonce",), ("lr=0.001", "tau=0.1")))
register_arm(Arm("VSE++", ("loss=vsepp",),
                 ("lr=0.001", "vsepp_margin=0.1", "vsepp_warmup_epochs=5")))

#: The paired comparisons of the main arms (Tables 2b and 3b, the findings): (a, b) is a − b.
COMPARISONS = (("M3", "PATR"), ("M3", "PATR text_head=none"), ("InfoNCE", "M3"))


def lr_label(lr: float) -> str:
    """3e-4, 1e-3: a learning rate as the tables write it."""
    return f"{lr:.0e}".replace("e-0", "e-")


def settings_label(cfg) -> str:
    """An arm's own hyperparameters as a table says them: 'λ 1, μ_t 0.5, lr 3e-4'."""
    return ", ".join(LOSSES[cfg.loss].label(cfg) + [f"lr {lr_label(cfg.lr)}"])


#: The settings the defaults sweep called within noise of its choice (a test checks them
#: against docs/sweeps/defaults_mini.json): the primary endpoints are answered at each too,
#: so their arms run on every seed. M3's are (λ, lr) beside the chosen (0.1, 3e-4); PATR's
#: learning rate beside the chosen 3e-4 is a matched learning rate already; the caption
#: options beside the chosen names are crossed at the learning rate the caption stage of
#: the sweep compared them at (:data:`PROTOCOL_LR`), as rows of Table 2d.
NOISE_M3_SETTINGS = ((0.1, 1e-3), (0.3, 3e-4))
NOISE_PATR_LRS = (1e-3,)
NOISE_CAPTIONS = ("names+keywords", "names+unique_keywords")


def curve_arm(lam: float, lr: float) -> Arm:
    """The point of the λ curve at ``lam`` and ``lr``: the paper's M3 there (λ 0 is PATR;
    μ_t has no effect there). PATR, the paper's M3 and M3's settings within noise of its
    choice run on every seed; the other points on the first seeds."""
    method = "PATR" if lam == PATR_LAMBDA else "M3"
    name = (f"PATR @lr {lr_label(lr)}" if lam == PATR_LAMBDA
            else f"M3 λ={lam:g} @lr {lr_label(lr)}")
    every_seed = lam in (PATR_LAMBDA, PAPER_LAMBDA) or (lam, lr) in NOISE_M3_SETTINGS
    return Arm(name, ("loss=patr", f"lambda_tt={lam:g}", "margin_tt=0.5", f"lr={lr:g}"),
               method=method, lam=lam, lr=lr, seeds=None if every_seed else FIRST_SEEDS)


def matched_pair(lr: float) -> tuple[Arm, Arm]:
    """(PATR, the paper's M3) at ``lr``: the ablation's pair."""
    return curve_arm(PATR_LAMBDA, lr), curve_arm(PAPER_LAMBDA, lr)


def long_arm(arm: Arm) -> Arm:
    """``arm`` at twice the default length, continued from its default-length run (Table 2c
    and Figure 4; the first seeds only)."""
    return Arm(f"{arm.name} 2x epochs", base=arm, lam=arm.lam, lr=arm.lr, length=2,
               seeds=FIRST_SEEDS)


#: English training captions of each caption option (the shipped asset; checked by a test).
CAPTION_COUNTS = dict(zip(TRAIN_CAPTIONS, (4434, 1249, 2189)))
#: The caption option the defaults sweep chose (also the config default).
CHOSEN_CAPTIONS = "names"


def caption_epochs(option: str, batch_size: int = 128) -> int:
    """Epochs of ``option`` for :data:`repro.config.MINI_STEPS` optimizer steps."""
    return epochs_for_steps(CAPTION_COUNTS[option], batch_size, MINI_STEPS)


@dataclass(frozen=True)
class Protocol:
    """A row of Table 2d: ``what`` changes against the reference protocol, the config
    overrides that change it (``sets``, applied after the matched pair's), and the caption
    option whose epochs it trains for the reference's optimizer steps (None: the same)."""

    name: str
    what: str
    sets: tuple = ()
    captions: str | None = None


#: Table 2d: which protocol choice decides the M3 vs PATR verdict. Every row is a matched pair
#: at PROTOCOL_LR (PATR and the paper's M3 differ in λ only). The names are those of
#: docs/history.md: the reference (every other table's protocol) is the matched pair itself;
#: "v1" is kept for comparison: all English keywords as captions, identical texts of two emoji
#: as negatives, a random split that lets near-duplicates straddle it, lr 1e-3, hidden width 512.
PROTOCOL_LR = 1e-3
REFERENCE_PROTOCOL = "v2"
PROTOCOLS = Registry("protocol")
for _p in (
    Protocol(REFERENCE_PROTOCOL, "the protocol of every other table"),
    Protocol("v1", "keyword captions, no text mask, random split, v1 settings",
             ("train_captions=names+keywords", "mask_same_text=false", "emoji_split=random",
              "lr=0.001", "head_hidden=512"), "names+keywords"),
    Protocol("v2, head 1024", "hidden width 1024 instead of 512", ("head_hidden=1024",)),
    *(Protocol(f"v2, {c}", f"training captions: {c}", (f"train_captions={c}",), c)
      for c in NOISE_CAPTIONS),
):
    PROTOCOLS.register(_p)


def protocol_arm(method: str, protocol: str) -> Arm:
    """PATR or the paper's M3 (``method``) under ``protocol``: the reference is the matched
    pair at :data:`PROTOCOL_LR` itself; another protocol adds its overrides to it."""
    pair = dict(zip(("PATR", "M3"), matched_pair(PROTOCOL_LR)))
    if method not in pair:
        raise ReproError(f"protocol rows are PATR or M3, not {method!r}")
    if protocol == REFERENCE_PROTOCOL:
        return pair[method]
    p = PROTOCOLS.lookup(protocol)
    every_seed = p.captions in NOISE_CAPTIONS and p.sets == (f"train_captions={p.captions}",)
    return Arm(f"{method} [{p.name}]", p.sets, base=pair[method], lam=pair[method].lam,
               lr=PROTOCOL_LR, protocol=p.name, seeds=None if every_seed else BASE_SEEDS)


def raw_arm(method: str) -> Arm:
    """Table 5's raw-feature row of a main arm: it on the tower's raw features (no output
    preprocessing), at its settings otherwise (the first seeds)."""
    return Arm(f"{method} raw features", ("text_preprocess=none",), base=ARMS.lookup(method),
               raw_features=True, seeds=FIRST_SEEDS)


#: The main arms with a raw-feature row, and the methods of the protocol rows.
RAW_METHODS = PROTOCOL_METHODS = ("PATR", "M3")


def grid_arms() -> tuple[Arm, ...]:
    """Every arm of the grid, in grid order: the registered arms, the λ curves, the long
    runs, the protocol rows and the raw-feature rows."""
    curves = tuple(curve_arm(lam, lr) for lr in MATCHED_LRS for lam in CURVE_LAMBDAS)
    longs = tuple(long_arm(a) for lr in MATCHED_LRS for a in matched_pair(lr))
    protocols = tuple(protocol_arm(m, p) for p in PROTOCOLS if p != REFERENCE_PROTOCOL
                      for m in PROTOCOL_METHODS)
    raws = tuple(raw_arm(m) for m in RAW_METHODS)
    return (*ARMS.values(), *curves, *longs, *protocols, *raws)


def arm_named(name: str) -> Arm:
    """The arm of :func:`grid_arms` called ``name`` (a one-line error naming the others)."""
    if name in ARMS:  # the common case: a main arm is its registry entry
        return ARMS[name]
    arms = {a.name: a for a in grid_arms()}
    if name not in arms:
        raise ReproError(f"unknown arm {name!r}; expected one of {', '.join(arms)}")
    return arms[name]


def as_arm(arm: Arm | str) -> Arm:
    """``arm`` itself, or the arm of that name."""
    return arm if isinstance(arm, Arm) else arm_named(arm)


def grid_towers() -> tuple:
    """The grid's text towers: every registered one, in registry order."""
    return tuple(TEXT_TOWERS)


@dataclass(frozen=True)
class TowerPlan:
    """Which arms a text tower runs and its own settings.

    ``defaults``: overrides of every arm on this tower, applied before the arm's own (the
    tower's choices, e.g. its output preprocessing); ``methods``: the main arms it runs (None:
    every arm of the grid but the raw-feature rows); with ``methods``, the raw-feature rows of
    those methods too when ``raw_rows``; ``why``: why it runs only those (tables say it once).
    """

    defaults: tuple = ()
    methods: tuple | None = None
    raw_rows: bool = False
    why: str = ""

    def runs(self, arm: Arm) -> bool:
        if self.methods is None:
            return not arm.raw_features
        return arm.method in self.methods and (
            arm.kind == "main" or (self.raw_rows and arm.raw_features))


#: A second tower trains every arm it runs at the settings chosen for the default tower, so
#: that the tower table changes the tower only. E5 is a second real tower for the tower axis
#: (budget): PATR and M3 at their own settings (which differ in λ only: a matched pair on
#: centred features) and the raw-feature rows; its own choice is its output preprocessing
#: (centred on the English training mean; the raw-feature rows show the other).
TOWER_PLANS = {"e5": TowerPlan(
    ("text_preprocess=center_en",), ("PATR", "M3"), raw_rows=True,
    why="a second real tower for the tower axis, it runs PATR and M3 at their own settings "
        "and their raw-feature rows only (budget)")}


def tower_plan(tower: str) -> TowerPlan:
    return TOWER_PLANS.get(tower, TowerPlan())


def tower_excluded(tower: str, profile: str) -> str | None:
    """Why ``tower`` is not part of ``profile``'s grid (its registry entry), or None when it is."""
    spec = text_tower(tower)
    return None if spec.profiles is None or profile in spec.profiles else spec.why_not_other_profiles


def tower_overrides(tower: str) -> list[str]:
    """The config overrides of ``tower``'s own task: the tower and its defaults."""
    return [f"text_tower={tower}", *tower_plan(tower).defaults]


def run_overrides(tower: str, arm: Arm, base_epochs: int) -> list[str]:
    """The config overrides of ``arm`` on ``tower`` (``base_epochs``: the default length)."""
    return [*tower_overrides(tower), *arm.overrides(base_epochs)]


def tower_arms(tower: str) -> tuple[Arm, ...]:
    """The arms of :func:`grid_arms` that ``tower`` runs, in grid order."""
    plan = tower_plan(tower)
    return tuple(a for a in grid_arms() if plan.runs(a))


# ----------------------------------------------------------------------------- endpoints
# The primary endpoints, declared before the runs: one per claim the package answers, each a
# paired difference of one named metric, mean over the ten non-English languages. Holm's
# correction runs over these endpoints only; every other cell of ``paper_tables/`` is an
# estimate with an interval and no verdict word. An endpoint compares arm ``a`` with arm ``b``
# on ``tower`` (``b`` on ``b_tower`` for the tower axis), or arm ``a`` with chance (``b``
# None). Its ``variants`` are the same comparison at the settings the defaults sweep could not
# separate from its choice (NOISE_M3_SETTINGS, NOISE_PATR_LRS, NOISE_CAPTIONS): reported beside
# the endpoint as estimates at its Holm level; where they disagree with it, the answer is the
# range.

#: The languages an endpoint's metric is averaged over.
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
