"""What every table, figure and finding shares: captions, plateau marks and accessors of a
finished grid's numbers (the Table type is :mod:`repro.report.table`).

Numbers are means and (sample) standard deviations over seeds; paired differences are taken
seed by seed (same seed: same initialisation and same batches) and test item by test item
(:func:`item_scores`, from each run's ``test_ranks.json``). A variant with runs that ended on
the loss plateau carries a dagger wherever it is used.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repro.data.paper import LANGS
from repro.design import Arm, as_arm
from repro.config import PLATEAU_GAP, PLATEAU_WINDOW
from repro.report.cells import DAGGER, Counts, SeedList
from repro.scoring.stats import MIN_PAIRED_N, crossed_estimate
from repro.training.evaluation import RANKS_FILE, read_ranks

NON_EN = tuple(l for l in LANGS if l != "en")

PLATEAU_NOTE = (f"{DAGGER}k/n: k of the n seeds ended on the loss plateau: over their last "
                f"{PLATEAU_WINDOW} optimizer steps, cos(t, v+) did not beat cos(t, hardest in-batch "
                f"v−) by {PLATEAU_GAP:g} on average (method.md section 3; the step each run left it is in Table 2c and "
                "metrics.json).")


@dataclass(frozen=True)
class Difference:
    """The paired difference by seed "``a`` − ``b``" of metric ``key`` (a metrics.json
    retrieval key) averaged over ``langs``: both on ``tower``, or ``a`` on ``tower`` and ``b``
    on ``b_tower`` (the tower axis). A table that prints it registers its cell under this key
    (:meth:`repro.report.table.Table.add`); the findings quote it from there."""

    tower: str
    a: Arm
    b: Arm
    langs: tuple
    key: str
    b_tower: str | None = None

    @classmethod
    def of(cls, tower: str, a: Arm | str, b: Arm | str, langs, key: str,
           b_tower: str | None = None) -> Difference:
        return cls(tower, as_arm(a), as_arm(b), tuple(langs), key, b_tower)

    def __str__(self) -> str:
        where = self.tower if self.b_tower is None else f"{self.tower} vs {self.b_tower}"
        return (f"{self.a.name} − {self.b.name} ({where}, {self.key} over "
                f"{', '.join(self.langs)})")


class Estimates:
    """Every table's registered cells: output name (e.g. "Table 2c") -> typed key -> cell,
    Holm-adjusted within its table. A key that no table of that output printed is an error,
    never a sentence."""

    def __init__(self, by_output: dict):
        self.by_output = by_output

    def __call__(self, output: str, key):
        cells = self.by_output.get(output, {})
        if key not in cells:
            raise KeyError(f"{output} has no estimate {key}")
        return cells[key]


#: Published text-to-image R@10 on XTD10 of the paper's mUSE models (method.md section 7).
PUBLISHED_R10 = {
    "PATR": {"en": 83.6, "es": 75.6, "fr": 76.9, "zh": 76.1, "it": 73.4, "ko": 64.3,
             "ru": 73.6, "jp": 69.4},
    "M3": {"en": 85.3, "es": 78.9, "fr": 78.9, "zh": 76.7, "it": 73.6, "ko": 67.8,
           "ru": 76.1, "jp": 70.7},
}




def plateau_note(grid) -> str:
    """:data:`PLATEAU_NOTE` and which plateau state the tables show: the end of training, while
    the evaluated model is each run's best-validation epoch (both are in metrics.json)."""
    # a run that two arms share (the same config) counts once
    runs = [grid.results[k] for k in grid.results if k not in grid.same_as]
    agree = sum(r.on_plateau_at_best_epoch == r.ended_on_plateau for r in runs)
    return (PLATEAU_NOTE + " The tables show the state at the end of training; the evaluated "
            "model is each run's best-validation epoch, whose state is "
            f"`on_plateau_at_best_epoch` in metrics.json: the two agree in {agree} of the "
            f"grid's {len(runs)} runs.")


def backbone_line(grid) -> str:
    """The image backbone of the grid's runs, as every caption names it."""
    cfgs = list(grid.configs.values())
    name = cfgs[0].image_backbone if cfgs else "?"
    weights = cfgs[0].image_weights if cfgs else "?"
    return (f"image backbone **{name}** ({'ImageNet weights' if weights == 'imagenet' else 'random init'}, "
            "frozen, cached pooled features) + trained heads")


def seeds_text(grid, seeds=None) -> str:
    """The seeds a table's numbers come from: ``seeds`` when given, else the grid's, saying so
    when the arms run on different subsets of them (each cell's n tells which)."""
    if seeds is not None:
        return "seeds " + ", ".join(map(str, seeds))
    ran = {k.seed for k in grid.results}
    subsets = any({k.seed for k in grid.results if (k.tower, k.arm) == (t, a)} != ran
                  for t, a in {(k.tower, k.arm) for k in grid.results})
    listed = [s for s in grid.seeds if s in ran] or list(grid.seeds)
    span = (f"{listed[0]}-{listed[-1]}" if len(listed) > 2 and listed == list(
        range(listed[0], listed[-1] + 1)) else ", ".join(map(str, listed)))
    return (f"seeds {span}" + (" (the declared endpoints' arms; the other arms run on the "
                               "first five or three: each cell's n says how many)"
                               if subsets else ""))


def data_line(grid, seeds=None) -> str:
    """The caption line naming the profile, data, backbone and seeds (``seeds``: a table's
    own, when they are not the grid's)."""
    seeds = seeds_text(grid, seeds)
    if grid.profile == "mini":
        cfg = next((c for k, c in grid.configs.items() if k.arm.name == "PATR"),
                   next(iter(grid.configs.values()), None))
        captions = cfg.train_captions if cfg else "?"
        return ("Profile **mini**: offline emoji benchmark v2 (CLDR 41 names, Twemoji images; "
                f"train on the English {captions} of 1,249 emoji, identical caption texts never "
                "negatives; split by near-duplicate groups; test on 500 held-out emoji, one "
                f"caption per image and language); {backbone_line(grid)}; {seeds}. "
                "Not comparable to XTD10 numbers.")
    return ("Profile **paper**: trained on MSCOCO 2014 English captions (XTD10 images excluded), "
            f"tested on XTD10 (1000 images, 11 languages); {backbone_line(grid)}; {seeds}.")


def plateau_count(runs) -> Counts:
    """"k/n": k of the n runs ended on the plateau."""
    return Counts(f"{sum(r.ended_on_plateau for r in runs)}/{len(runs)}")


def plateau_mark(runs) -> str:
    """" †k/n" when k of the n runs ended on the plateau, else ""."""
    return f" {DAGGER}{plateau_count(runs)}" if any(r.ended_on_plateau for r in runs) else ""


def escape_steps(runs) -> SeedList:
    """Each run's plateau-escape step, comma-separated ("never" when it ended on it)."""
    return SeedList(", ".join(str(r.escape_step) if r.escape_step is not None else "never"
                     for r in runs))


def not_run_notes(grid) -> list[str]:
    return [f"{t}: not run: {why}" for t, why in grid.not_run.items()]


def lang_mean(runs, langs, key):
    """Per seed, the mean over ``langs``; returns the per-seed list."""
    return [float(np.mean([r.retrieval[l][key] for l in langs])) for r in runs]


def paired(grid, tower, a, b, lang_or_langs, key):
    """Per-seed differences a - b of a metric (a language, or the mean over languages)."""
    out = []
    for s in grid.seeds:
        ra, rb = grid.result(tower, a, s), grid.result(tower, b, s)
        if ra is None or rb is None:
            continue
        langs = lang_or_langs if isinstance(lang_or_langs, tuple) else (lang_or_langs,)
        out.append(float(np.mean([ra.retrieval[l][key] for l in langs]))
                   - float(np.mean([rb.retrieval[l][key] for l in langs])))
    return out


@functools.lru_cache(maxsize=None)
def _ranks(path: Path) -> dict:
    """A run's ``test_ranks.json`` as arrays, read once per report."""
    return {kind: {lang: np.asarray(v) for lang, v in by_lang.items()}
            for kind, by_lang in read_ranks(path).items()}


def item_scores(run_dir: Path, langs, key: str) -> np.ndarray:
    """(n_test_items,) float64: one run's score of each test item for a metrics key, averaged
    over ``langs``, so that its mean is the run's metric averaged over ``langs``: for
    ``t2i_R@k`` / ``i2t_R@k`` 100 x [rank <= k] of the item's caption / image (one caption per
    test image and language), for ``mAP`` 100 x the image's tagging AP."""
    ranks = _ranks(Path(run_dir) / RANKS_FILE)
    if key == "mAP":
        per_lang = [100.0 * ranks["tag_ap"][lang] for lang in langs]
    else:
        direction, k = key.split("_R@")
        per_lang = [100.0 * (ranks[direction][lang] <= int(k)) for lang in langs]
    if len({x.shape for x in per_lang}) != 1:
        raise ValueError(f"{run_dir}: {key} has a different number of test items per language")
    return np.mean(per_lang, axis=0)


def paired_items(grid, tower, a, b, langs, key, b_tower: str | None = None) -> np.ndarray:
    """(n_seeds, n_items): per seed both arms ran (``b`` on ``b_tower`` when given), the
    per-item differences a − b of :func:`item_scores`."""
    rows = []
    for s in grid.seeds:
        if grid.result(tower, a, s) is None or grid.result(b_tower or tower, b, s) is None:
            continue
        rows.append(item_scores(grid.run_dir(tower, a, s), langs, key)
                    - item_scores(grid.run_dir(b_tower or tower, b, s), langs, key))
    return np.array(rows)


def difference(grid, tower, a, b, lang_or_langs, key, b_tower: str | None = None):
    """The :class:`~repro.scoring.stats.Estimate` of a − b (paired by seed and test item,
    crossed bootstrap interval), or "n/a" with fewer than two common seeds."""
    langs = lang_or_langs if isinstance(lang_or_langs, tuple) else (lang_or_langs,)
    d = paired_items(grid, tower, a, b, langs, key, b_tower)
    return crossed_estimate(d) if len(d) >= MIN_PAIRED_N else "n/a"


def arm_notes(grid, tower, arm) -> list[str]:
    notes = set()
    for r in grid.runs(tower, arm):
        notes.update(r.notes.get("training", []))
    return sorted(notes)


def mean_non_en(grid, tower, arm, key):
    """Per seed, the mean of a retrieval metric over the 10 non-English languages."""
    return lang_mean(grid.runs(tower, arm), NON_EN, key)


def print_rows(rows: list[dict]) -> None:
    """Rows of dicts (same keys) as a Markdown table on stdout; floats with 3 decimals."""
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()]
        print("| " + " | ".join(cells) + " |")
