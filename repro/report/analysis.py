"""What the report needs from a trained model, computed once per run and kept in the run's
folder (``analysis.json``), so that every table and figure can be regenerated from a run's
record (:mod:`repro.experiments.records`) without its weights.

A run's analysis depends on its arm alone (:func:`kinds`), never on which output asks first:

* ``clusters`` (main PATR and M3): Figure 1's panel: the cluster statistics of the model's
  test-caption embeddings and the 2-D PCA of the first :data:`CLUSTER_ITEMS` test items' captions
  in every language.
* ``examples`` (:data:`RETRIEVAL_ARMS`): Figure 7's rows: per language and example emoji the
  top :data:`TOP` test images and the rank of the emoji's own image.
* ``tags`` (:data:`TAGGING_ARM`, when the task has tags): Figure 8's top tags per example
  image in every language of the task (Figure 8 draws :data:`TAG_LANGS`).
* ``study`` (main and raw-feature PATR and M3): Table 5's zero-shot non-English R@1 and R@10
  under every perturbation of :func:`conditions` (raw-feature arms: the real tower only),
  with and without language centering.

Per-query test ranks (Figure 2's curves) are the run's own ``test_ranks.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from repro.app.search import top_k
from repro.core.errors import ReproError
from repro.core.fileio import atomic_write_bytes
from repro.data import emoji
from repro.data.paper import LANGS
from repro.design import Arm, as_arm
from repro.model.encoder import DualEncoder
from repro.report.common import NON_EN
from repro.scoring import metrics
from repro.towers import controlled
from repro.training.evaluation import embed_images, embed_texts
from repro.training.trainer import load_best_model

ANALYSIS_FILE = "analysis.json"
#: Bumped when what an analysis holds changes: an older ``analysis.json`` is recomputed.
ANALYSIS_VERSION = 2

#: Figure 7 and 8's examples: EXAMPLES test emoji drawn without replacement by numpy's default
#: generator seeded with EXAMPLE_SEED, in test-split order; TOP images or tags each.
EXAMPLE_SEED = 7
EXAMPLES = 6
TOP = 5
#: Figure 7's arms and Figure 8's arm (the tagging table's).
RETRIEVAL_ARMS = ("PATR", "M3")
TAGGING_ARM = "M3"
#: Figure 8's languages: one of each script of the benchmark (Latin, Cyrillic, and
#: Japanese, Korean and Chinese in the CJK font of :mod:`repro.core.drawing`) and two more
#: Latin ones; the analysis keeps every language's tags.
TAG_LANGS = ("en", "es", "pl", "ru", "jp", "ko", "zh")
#: Figure 1 draws the captions of the first CLUSTER_ITEMS test items.
CLUSTER_ITEMS = 8

#: Table 5's offsets (tower features are unit vectors) and rotation sizes, from "no effect"
#: to "no transfer"; 0 is the real tower.
BETAS = (0.25, 0.5, 1.0, 2.0, 4.0)
ALPHAS = (0.1, 0.3, 1.0, 3.0)
#: The methods whose trained models Table 5 evaluates.
STUDY_METHODS = ("PATR", "M3")


def example_items(n_test: int) -> np.ndarray:
    """Test-split positions of the examples (sorted), by the declared rule."""
    rng = np.random.default_rng(EXAMPLE_SEED)
    return np.sort(rng.choice(n_test, size=min(EXAMPLES, n_test), replace=False))


def conditions() -> list[tuple[str, str, float]]:
    """(kind, label, size): the real tower, then each offset and rotation."""
    return ([("real", "real", 0.0)] + [("offset", f"offset β={b:g}", b) for b in BETAS]
            + [("rotation", f"rotation α={a:g}", a) for a in ALPHAS])


def _perturb(x: torch.Tensor, lang: str, kind: str, size: float) -> torch.Tensor:
    if kind == "offset":
        return controlled.offset(x, lang, size)
    if kind == "rotation":
        return controlled.rotation(x, lang, size)
    return x


def changed_features(task, kind: str, size: float, centred: bool) -> dict:
    """language -> the test captions' tower features under a condition. Centering's means
    come from the unlabeled text seen through the same (perturbed) tower, and the English
    training captions; ``task.unlabeled`` must hold every non-English language."""
    out = {}
    en_mean = controlled.mean_feature(task.train_text.feats) if centred else None
    for lang, ts in task.test_text.items():
        x = _perturb(ts.feats, lang, kind, size)
        if centred and lang != "en":
            unlabeled = _perturb(task.unlabeled[lang].feats, lang, kind, size)
            x = controlled.center(x, lang, {"en": en_mean,
                                            lang: controlled.mean_feature(unlabeled)})
        out[lang] = x
    return out


def can_center(task) -> bool:
    """Whether the task has unlabeled text in every non-English test language."""
    return all(l in task.unlabeled for l in NON_EN if l in task.test_text)


def study_conditions(task, raw: bool) -> list[tuple[str, str, float, bool]]:
    """(kind, label, size, centred) of Table 5's rows for a task: every condition (raw-feature
    arms: the real tower only), each without and, where the task allows, with centering."""
    conds = conditions()[:1] if raw else conditions()
    return [(kind, label, size, centred) for kind, label, size in conds
            for centred in (False, True) if not centred or can_center(task)]


def zero_shot(model, img: np.ndarray, task, feats: dict) -> dict:
    """Non-English mean t2i R@1 and R@10 (%) of one model on changed features (``img``: the
    model's embeddings of the task's test images, (n_images, embed_dim))."""
    reports = {l: metrics.retrieval_report(embed_texts(model, feats[l]) @ img.T,
                                           task.test_text[l].item)
               for l in NON_EN if l in feats}
    return {k: float(np.mean([r[f"t2i_{k}"] for r in reports.values()])) for k in ("R@1", "R@10")}


def kinds(arm: Arm, task) -> tuple[str, ...]:
    """The analyses a run of ``arm`` keeps (on ``task``, the one it trained on)."""
    arm = as_arm(arm)
    main = arm.kind == "main"
    out = []
    if main and arm.name in STUDY_METHODS:
        out.append("clusters")
    if main and arm.name in RETRIEVAL_ARMS:
        out.append("examples")
    if main and arm.name == TAGGING_ARM and task.tags:
        out.append("tags")
    if arm.name in STUDY_METHODS or (arm.kind == "raw" and arm.method in STUDY_METHODS):
        out.append("study")
    return tuple(out)


def _clusters(model, task) -> dict:
    emb = {l: embed_texts(model, ts.feats) for l, ts in task.test_text.items()}
    return cluster_panel(emb, task)


def cluster_panel(emb: dict, task) -> dict:
    """Figure 1's panel of caption embeddings ``emb`` (language -> (n, d), L2-normalised):
    ``stats`` over all test items, ``xy``: the 2-D PCA of the first items' captions, language
    after language in :data:`LANGS` order."""
    st = metrics.cluster_stats(emb, {l: ts.text_id for l, ts in task.test_text.items()})
    items = np.arange(min(CLUSTER_ITEMS, task.test_text["en"].feats.shape[0]))
    pts = np.concatenate([emb[l][items] for l in LANGS])
    centred = pts - pts.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return {"stats": st, "xy": (centred @ vt[:2].T).tolist(), "items": len(items)}


def _examples(model, task) -> list[dict]:
    images = embed_images(model, task.test_images)
    picks = example_items(task.test_images.shape[0])
    out = []
    for lang in LANGS:
        ts = task.test_text[lang]
        order, _ = top_k(embed_texts(model, ts.feats), images, images.shape[0])
        for item in picks:
            row = int(np.flatnonzero(ts.item == item)[0])
            out.append({"lang": lang, "item": int(item), "top": order[row, :TOP].tolist(),
                        "rank": int(np.flatnonzero(order[row] == item)[0]) + 1})
    return out


def _tags(model, task) -> list[dict]:
    images = embed_images(model, task.test_images)
    picks = example_items(task.test_images.shape[0])
    bench = emoji.load_emoji()
    out = []
    for lang in (l for l in LANGS if l in task.tags):
        vocab_set, truth = task.tags[lang]
        vocab, _ = bench.tag_vocabulary(lang)
        order, _ = top_k(images[picks], embed_texts(model, vocab_set.feats), TOP)
        for item, row in zip(picks, order):
            own = set(truth[int(item)].tolist())
            out.append({"lang": lang, "item": int(item),
                        "tags": [[vocab[j], int(j) in own] for j in row]})
    return out


def _study(model, task, raw: bool) -> list[dict]:
    images = embed_images(model, task.test_images)
    return [{"kind": kind, "size": size, "centered": centred,
             **zero_shot(model, images, task, changed_features(task, kind, size, centred))}
            for kind, _, size, centred in study_conditions(task, raw)]


def compute(model: DualEncoder, task, arm: Arm) -> dict:
    """Every analysis of :func:`kinds` for one trained model (eval mode)."""
    arm = as_arm(arm)
    out = {"version": ANALYSIS_VERSION, "conditions": [c[1] for c in conditions()]}
    with torch.no_grad():
        for kind in kinds(arm, task):
            if kind == "clusters":
                out[kind] = _clusters(model, task)
            elif kind == "examples":
                out[kind] = _examples(model, task)
            elif kind == "tags":
                out[kind] = _tags(model, task)
            else:
                out[kind] = _study(model, task, raw=arm.kind == "raw")
    return out


def analysis_bytes(values: dict) -> bytes:
    return json.dumps(values, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def _current(values: dict, arm: Arm, task) -> bool:
    return (values.get("version") == ANALYSIS_VERSION
            and values.get("conditions") == [c[1] for c in conditions()]
            and all(k in values for k in kinds(arm, task)))


def load_model(grid, tower: str, arm, seed: int) -> DualEncoder:
    """The evaluated (best-validation) model of a finished run, on the CPU, in eval mode."""
    cfg, task = grid.config(tower, arm, seed), grid.arm_task(tower, arm)
    path = grid.run_dir(tower, arm, seed) / "best_model.pt"
    if not path.is_file():
        raise ReproError(f"{path.parent}: no {ANALYSIS_FILE} of this version and no "
                         "best_model.pt to compute it from (a record without weights: retrain "
                         "the run with python -m repro reproduce)")
    model = DualEncoder(cfg, task.text_dim, task.image_feat_dim)
    model.load_state_dict(load_best_model(path.parent))  # checked against its digests
    return model.eval()


def of(grid, tower: str, arm, seed: int) -> dict:
    """The analysis of one run: its ``analysis.json`` when current, else computed from its
    model and written there (atomically). Kept in ``grid.analyses``."""
    arm = as_arm(arm)
    key = grid.key(tower, arm, seed)
    if key in grid.analyses:
        return grid.analyses[key]
    path = Path(grid.run_dir(tower, arm, seed)) / ANALYSIS_FILE
    task = grid.arm_task(tower, arm)
    values = None
    if path.is_file():
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ReproError(f"{path}: unreadable ({exc}); delete it to recompute it") from None
    if values is None or not _current(values, arm, task):
        same = values and {k: values.get(k) for k in ("version", "conditions")} == {
            "version": ANALYSIS_VERSION, "conditions": [c[1] for c in conditions()]}
        kept = values if same else {}
        # two arms of the same config share one folder: each keeps its kinds
        values = {**kept, **compute(load_model(grid, tower, arm, seed), task, arm)}
        atomic_write_bytes(path, analysis_bytes(values))
        values = json.loads(analysis_bytes(values))  # what a reader of the file gets
    grid.analyses[key] = values
    return values


def ensure_all(grid) -> int:
    """Compute (or read) the analysis of every run that keeps one; returns how many."""
    n = 0
    for key in list(grid.results):
        if kinds(key.arm, grid.arm_task(key.tower, key.arm)):
            of(grid, key.tower, key.arm, key.seed)
            n += 1
    return n
