"""Evaluation of a trained dual encoder: embeddings, the English validation report used for
model selection, text diagnostics, and the test report (retrieval and tagging per language,
text alignment, text clusters) that becomes ``metrics.json``.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from repro.config import METRICS_VERSION, Config
from repro.core import numerics
from repro.data.paper import LANGS
from repro.model.encoder import DualEncoder
from repro.scoring import metrics
from repro.training.results import RunResult
from repro.training.state import TrainState
from repro.training.tasks import Task, assert_english, with_note



@torch.no_grad()
def _embed(encode, x: torch.Tensor, batch: int, model: DualEncoder) -> np.ndarray:
    """``encode`` over ``x`` in batches on the model's device, float32 (n, D), eval mode."""
    model.eval()
    dev = device_of(model)
    return torch.cat([encode(x[i:i + batch].to(dev)).cpu()
                      for i in range(0, x.shape[0], batch)]).numpy()


def embed_images(model: DualEncoder, images: torch.Tensor, batch: int = 512) -> np.ndarray:
    """Image embeddings, float32 (n, D), model in eval mode."""
    return _embed(model.encode_image, images, batch, model)


def embed_texts(model: DualEncoder, feats: torch.Tensor, batch: int = 4096) -> np.ndarray:
    """Text embeddings from tower features, float32 (n, D), model in eval mode."""
    return _embed(model.encode_text, feats, batch, model)


def device_of(model) -> torch.device:
    return next(model.parameters()).device


def validate(model: DualEncoder, task: Task) -> dict:
    """English validation report (model selection only ever sees this)."""
    assert_english(task.val_text, "model selection")
    img, txt = embed_images(model, task.val_images), embed_texts(model, task.val_text.feats)
    return metrics.retrieval_report(txt @ img.T, task.val_text.item)


def validation_item_scores(model: DualEncoder, task: Task, ks=(1, 5, 10)) -> np.ndarray:
    """Each English validation image's part of the validation R-sum, float (n_images,):
    100 x (the number of k in ``ks`` within which the image ranks one of its captions, plus
    the mean over its captions of the number of k within which the caption ranks the image).
    Their mean is the R-sum when every image has the same number of captions (the mini task:
    one name each); resampling images resamples the R-sum (the sweep's bootstrap)."""
    assert_english(task.val_text, "model selection")
    img, txt = embed_images(model, task.val_images), embed_texts(model, task.val_text.feats)
    item = np.asarray(task.val_text.item)
    n = img.shape[0]
    t2i = metrics.ranks(txt @ img.T, item)
    i2t = metrics.ranks(img @ txt.T, [np.flatnonzero(item == i) for i in range(n)])
    hits_t2i = sum((t2i <= k).astype(float) for k in ks)
    per_image_t2i = np.bincount(item, weights=hits_t2i, minlength=n) / np.bincount(item, minlength=n)
    return 100.0 * (sum((i2t <= k).astype(float) for k in ks) + per_image_t2i)


#: Text diagnostics use at most this many validation captions (the first ones): the
#: cosine matrix is quadratic (COCO's 25k validation captions would need 2.5 GB per epoch).
DIAGNOSTIC_CAPTIONS = 2048


@torch.no_grad()
def text_diagnostics(model: DualEncoder, groups) -> dict:
    """Mean cosine between English captions of the same item and of different items (over
    the first :data:`DIAGNOSTIC_CAPTIONS` captions of ``groups``; pairs of identical texts
    count as neither)."""
    n = DIAGNOSTIC_CAPTIONS
    t = embed_texts(model, groups.feats[:n])
    item = groups.item[:n]
    sim = t @ t.T
    same = item[:, None] == item[None, :]
    counted = ~np.eye(len(t), dtype=bool)
    if groups.text_id is not None:  # two identical texts are neither same- nor different-item
        tid = groups.text_id[:n]
        counted &= tid[:, None] != tid[None, :]
    s_same = float(sim[same & counted].mean()) if (same & counted).any() else float("nan")
    s_diff = float(sim[~same & counted].mean())
    return {"text_cos_same": s_same, "text_cos_diff": s_diff, "text_gap": s_same - s_diff}


def _alignment(text_sets: dict, head: dict) -> dict:
    """Caption-to-English-caption R@1 per language, raw tower vs after the text head
    (``head``: language -> the sets' text embeddings)."""
    if not text_sets:
        return {}
    out = {}
    raw = {l: torch.nn.functional.normalize(s.feats, dim=-1).numpy() for l, s in text_sets.items()}
    n = raw["en"].shape[0]
    for lang in text_sets:
        r_raw = metrics.ranks(raw[lang] @ raw["en"].T, np.arange(n))
        r_head = metrics.ranks(head[lang] @ head["en"].T, np.arange(n))
        out[lang] = {f"{name}_R@{k}": float(100 * np.mean(r <= k))
                     for name, r in (("raw", r_raw), ("head", r_head)) for k in (1, 10)}
    return out


def evaluate(model: DualEncoder, task: Task, cfg: Config, state: TrainState) -> RunResult:
    """The test report per language (retrieval, tagging, alignment), plus run facts: what
    ``metrics.json`` holds."""
    img = embed_images(model, task.test_images)
    txt = {lang: embed_texts(model, ts.feats) for lang, ts in task.test_text.items()}
    retrieval, tagging = {}, {}
    for lang, ts in task.test_text.items():
        retrieval[lang] = metrics.retrieval_report(txt[lang] @ img.T, ts.item)
    for lang, (vocab, tag_lists) in task.tags.items():
        tagging[lang] = metrics.tagging_report(img @ embed_texts(model, vocab.feats).T, tag_lists)
    notes = task.notes
    if cfg.loss == "patr" and cfg.lambda_tt and not model.has_trainable_text_side():
        notes = with_note(notes, "training", "M3 text term has no trainable parameters with "
                          "text_head=none: its gradient is zero, so this run trains exactly as "
                          "PATR does")
    log = state.log
    return RunResult.from_dict({
        "metrics_version": METRICS_VERSION,
        "profile": cfg.profile, "arm": cfg.arm, "seed": cfg.seed, "text_tower": cfg.text_tower,
        "image_backbone": cfg.image_backbone, "image_weights": cfg.image_weights,
        "device": str(device_of(model)),
        "best_epoch": state.best_epoch, "epochs": state.epoch,
        "steps": state.step, "escape_step": state.escape_step,
        "ended_on_plateau": state.escape_step is None,
        "on_plateau_at_best_epoch": (log[state.best_epoch - 1]["on_plateau"]
                                     if log and state.best_epoch else None),
        "last_epochs": [{k: v for k, v in e.items() if k != "seconds"} for e in log[-3:]],
        "retrieval": retrieval, "tagging": tagging,
        "alignment_test": _alignment(task.test_text, txt),
        "text_clusters": metrics.cluster_stats(txt, _text_ids(task.test_text)),
        "alignment_xtd10": _alignment(task.xtd10_text, {l: embed_texts(model, ts.feats)
                                                        for l, ts in task.xtd10_text.items()}),
        "notes": notes, "data_sha256": task.data_sha256, "numerics": numerics.record(),
        "summary": _summary(retrieval, tagging),
    })


#: The per-query test ranks of a run, beside its ``metrics.json``.
RANKS_FILE = "test_ranks.json"


def test_ranks(model: DualEncoder, task: Task) -> dict:
    """Per-query test results behind ``metrics.json``'s test report: ``{"t2i": {lang: [rank
    of each test caption's image]}, "i2t": {lang: [rank of each test image's best caption]},
    "tag_ap": {lang: [each test image's tagging AP]}}``; ranks are 1-based ints in the task's
    test order (captions: ``task.test_text[lang]``'s rows), APs fractions rounded to
    :data:`AP_DECIMALS` decimals in test-image order."""
    img = embed_images(model, task.test_images)
    out = {"t2i": {}, "i2t": {}, "tag_ap": {}}
    for lang, ts in task.test_text.items():
        t2i, i2t = metrics.retrieval_ranks(embed_texts(model, ts.feats) @ img.T, ts.item)
        out["t2i"][lang], out["i2t"][lang] = t2i.tolist(), i2t.tolist()
    for lang, (vocab, tag_lists) in task.tags.items():
        ap = metrics.average_precisions(img @ embed_texts(model, vocab.feats).T, tag_lists)
        out["tag_ap"][lang] = [round(float(x), AP_DECIMALS) for x in ap]
    return out


#: Decimals of a recorded tagging AP (a fraction): enough for every mean the tables print.
AP_DECIMALS = 6
#: The kinds of :func:`test_ranks`, in file order.
RANK_KINDS = ("t2i", "i2t", "tag_ap")


def ranks_bytes(ranks: dict) -> bytes:
    """:func:`test_ranks` as JSON, one line per kind and language (diffable, compact)."""
    lines = [f'"{d}/{lang}":{json.dumps(r, separators=(",", ":"))}'
             for d in RANK_KINDS for lang, r in ranks[d].items()]
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode()


def read_ranks(path) -> dict:
    """:func:`test_ranks` back from a file written by :func:`ranks_bytes`."""
    flat = json.loads(path.read_text())
    out = {d: {} for d in RANK_KINDS}
    for key, r in flat.items():
        d, lang = key.split("/")
        out[d][lang] = r
    return out


def _text_ids(text_sets: dict) -> dict | None:
    """language -> text ids of each set, or None when a set has none."""
    ids = {l: ts.text_id for l, ts in text_sets.items()}
    return None if any(v is None for v in ids.values()) else ids


def _summary(retrieval: dict, tagging: dict) -> dict:
    langs = [l for l in LANGS if l in retrieval]
    out = {f"t2i_R@1_{l}": retrieval[l]["t2i_R@1"] for l in langs}
    out.update({f"t2i_R@10_{l}": retrieval[l]["t2i_R@10"] for l in langs})
    if tagging:
        out["tag_mAP_mean"] = float(np.mean([tagging[l]["mAP"] for l in tagging]))
    return out
