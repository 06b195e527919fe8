"""``python -m repro.bench paper-scale``: the `paper` profile at COCO scale, simulated.

Synthetic cached features of the paper's shapes go through the real trainer and evaluator on
whatever device is present:

* training: 118,287 images x 2048 (ResNet-152 pooled) and 591,753 English captions x 512 (mUSE)
  or 768 (mBERT), the `paper` profile's heads, loss, batch and optimizer;
* selection: 5,000 validation images with 25,000 captions, every epoch;
* test: 1,000 XTD10 images x 11 languages (retrieval, alignment, text clusters), once per arm.

It times ``steps`` optimizer steps (after a warm-up), one validation and one test evaluation,
and projects the wall time of the paper grid from them (training, per-epoch validation and
diagnostics, the test evaluation of every arm), assuming the measured step time holds over a
whole epoch (synthetic features: same shapes and costs as real ones, different values).

The one-time work, cached after the first run, is measured too (:func:`measure_extraction`),
on generated inputs of the real shapes and formats, and listed separately: ResNet-152
features of COCO's 123,287 JPEGs (generated 640 x 480 JPEGs through the real loader and
backbone, random weights: same cost), and the text features of 627,753 captions (COCO train
and validation, XTD10) with mUSE (the real tower) and with mBERT's architecture (bert-base,
mBERT's vocabulary, random weights, token counts of COCO-length captions). Downloading COCO,
tables, figures and notebooks are not included. ``scale`` < 1 shrinks the data sets (tests;
memory figures then do not describe COCO) but never the per-step shapes.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import BertConfig, BertModel

from repro.config import make_config
from repro.data.paper import LANGS
from repro.design import ARMS, SEEDS, grid_arms, tower_excluded
from repro.model.encoder import DualEncoder
from repro.report.common import print_rows
from repro.towers import backbones
from repro.towers.text import TEXT_TOWERS, MuseTower
from repro.training.evaluation import evaluate, text_diagnostics, validate
from repro.training.tasks import Task, TextSet
from repro.training.trainer import (Hooks, TrainData, TrainState, make_optimizer, seed_everything,
                                    train_epoch)


def curve_runs() -> int:
    """Runs the lambda curves add to the main arms: each point on its seeds, except a point
    whose config is a main arm's (trained once)."""
    main = {make_config("mini", a.overrides()).to_json() for a in ARMS.values()}
    return sum(len(arm.seeds_of(SEEDS)) for arm in grid_arms() if arm.kind == "curve"
               and make_config("mini", arm.overrides()).to_json() not in main)


COCO = {"train_images": 118_287, "train_captions": 591_753, "val_images": 5_000,
        "val_captions": 25_000, "test_images": 1_000}
IMAGE_DIM = 2048
#: One-time extraction: every COCO 2014 image (train2014 + val2014) and every caption the
#: paper profile encodes (COCO train and validation captions, 11 x 1,000 XTD10 captions).
ONE_TIME = {"images": 82_783 + 40_504, "captions": 591_753 + 25_000 + 11 * 1_000}
#: Words per COCO caption (share of captions; mean about 10.5).
CAPTION_WORDS = {8: 0.10, 9: 0.20, 10: 0.22, 11: 0.16, 12: 0.11, 13: 0.08, 14: 0.05, 15: 0.04,
                 16: 0.02, 18: 0.01, 22: 0.01}
#: WordPiece tokens per English word in mBERT's vocabulary (about 1.3), plus CLS and SEP.
TOKENS_PER_WORD = 1.3
_WORDS = ("a man woman dog cat sitting on the table with plate of food next to red white "
          "large small two people standing in front building street car bus train riding "
          "horse field grass kitchen bathroom bed room group playing frisbee tennis ball "
          "skateboard surf board wave beach water sky clouds tree park bench holding "
          "umbrella walking down road sign stop traffic light pizza sandwich bowl").split()


def coco_like_captions(n: int, seed: int = 0) -> list[str]:
    """``n`` English captions with COCO's length distribution (:data:`CAPTION_WORDS`)."""
    rng = np.random.default_rng(seed)
    lengths = rng.choice(list(CAPTION_WORDS), size=n, p=np.array(list(CAPTION_WORDS.values()))
                         / sum(CAPTION_WORDS.values()))
    return [" ".join(rng.choice(_WORDS, size=k)) for k in lengths]


def coco_like_jpegs(folder, n: int, seed: int = 0) -> list:
    """``n`` 640 x 480 JPEGs (quality 90; smooth gradients plus noise, so that they decode
    and compress like photographs: about 100-200 KB each) in ``folder``."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640]
    paths = []
    for i in range(n):
        base = np.stack([(x * rng.uniform(0.1, 0.4) + y * rng.uniform(0.1, 0.4)) % 256
                         for _ in range(3)], axis=-1)
        noise = rng.normal(0, 25, size=base.shape)
        img = np.clip(base + noise, 0, 255).astype(np.uint8)
        p = Path(folder) / f"COCO_like_{i:06d}.jpg"
        Image.fromarray(img).save(p, quality=90)
        paths.append(p)
    return paths


def measure_extraction(n_images: int = 64, n_captions: int = 512, device: str | None = None,
                       towers=("muse", "mbert"), threads: int = 0) -> dict:
    """Throughput of the one-time extraction on this machine: images/s of ResNet-152 through
    the real loader (:func:`repro.towers.backbones.extract`), captions/s of each text tower on
    COCO-length captions. ``threads`` as the config key (0: all cores)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = {"device": device, "loader_workers": backbones.loader_workers(),
           "images_timed": n_images, "captions_timed": n_captions}
    with tempfile.TemporaryDirectory() as d:
        paths = coco_like_jpegs(d, n_images)
        out["jpeg_kB_mean"] = float(np.mean([p.stat().st_size for p in paths]) / 1024)
        backbones.extract("resnet152", "none", paths[:8], batch=8, device=device, log=None)
        t0 = time.perf_counter()
        backbones.extract("resnet152", "none", paths, device=device, log=None)
        out["resnet152_images_per_s"] = n_images / (time.perf_counter() - t0)
    captions = coco_like_captions(n_captions)
    if "muse" in towers:
        tower = MuseTower(threads=threads or os.cpu_count() or 1)
        tower.encode(captions[:32])
        t0 = time.perf_counter()
        tower.encode(captions)
        out["muse_captions_per_s"] = n_captions / (time.perf_counter() - t0)
    if "mbert" in towers:
        out["mbert_captions_per_s"] = _mbert_throughput(captions, device)
    return out


def _mbert_throughput(captions: list[str], device: str, batch: int = 64) -> float:
    """Captions/s of a random-weight bert-base with mBERT's vocabulary (119,547 tokens), at
    the token counts of ``captions``, batches of ``batch`` padded to their longest."""
    torch.manual_seed(0)
    net = BertModel(BertConfig(vocab_size=119_547)).eval().to(device)
    lengths = [2 + round(TOKENS_PER_WORD * len(c.split())) for c in captions]
    g = torch.Generator().manual_seed(0)

    def run(lens):
        for i in range(0, len(lens), batch):
            chunk = lens[i:i + batch]
            ids = torch.randint(1000, 119_547, (len(chunk), max(chunk)), generator=g)
            mask = (torch.arange(max(chunk))[None, :] < torch.tensor(chunk)[:, None]).long()
            with torch.inference_mode():
                net(input_ids=ids.to(device), attention_mask=mask.to(device))
        _sync(torch.device(device))

    run(lengths[:batch])
    t0 = time.perf_counter()
    run(lengths)
    return len(lengths) / (time.perf_counter() - t0)


def one_time_costs(x: dict) -> dict:
    """Minutes of the one-time extraction at COCO scale from :func:`measure_extraction`."""
    out = {"resnet152_features_min": ONE_TIME["images"] / x["resnet152_images_per_s"] / 60}
    for tower in ("muse", "mbert"):
        if f"{tower}_captions_per_s" in x:
            out[f"{tower}_features_min"] = ONE_TIME["captions"] / x[f"{tower}_captions_per_s"] / 60
    return out


def synthetic_task(text_dim: int, scale: float = 1.0, seed: int = 0):
    """A `paper`-shaped Task of random features (float32, CPU)."""
    g = torch.Generator().manual_seed(seed)
    n = {k: max(2, int(v * scale)) for k, v in COCO.items()}
    n["test_images"] = COCO["test_images"]  # the test set is always XTD10-sized

    def feats(rows, dim):
        return torch.randn(rows, dim, generator=g)

    def text(rows, n_items, lang):
        return TextSet(feats(rows, text_dim), np.arange(rows, dtype=np.int64) % n_items, lang)

    train_text = text(n["train_captions"], n["train_images"], "en")
    val_text = text(n["val_captions"], n["val_images"], "en")
    test_text = {lang: text(n["test_images"], n["test_images"], lang) for lang in LANGS}
    return Task(profile="paper", text_dim=text_dim, image_feat_dim=IMAGE_DIM,
                train_images=feats(n["train_images"], IMAGE_DIM), train_text=train_text,
                val_images=feats(n["val_images"], IMAGE_DIM), val_text=val_text,
                val_groups=val_text, test_images=feats(n["test_images"], IMAGE_DIM),
                test_text=test_text, tags={}, xtd10_text=test_text)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(text_dim: int, steps: int = 30, scale: float = 1.0, sets=()) -> dict:
    """Time one arm's pieces at paper scale on the present device (see the module doc)."""
    cfg = make_config("paper", list(sets))
    device = seed_everything(cfg)
    t0 = time.perf_counter()
    task = synthetic_task(text_dim, scale)
    t_data = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model = DualEncoder(cfg, text_dim, IMAGE_DIM).to(device)
    opt = make_optimizer(model, cfg)
    t0 = time.perf_counter()
    data = TrainData.of(task, device)
    _sync(device)
    t_move = time.perf_counter() - t0
    warm = 3
    train_epoch(model, opt, task, cfg, 1, data, Hooks(stop_after_batches=warm))
    _sync(device)
    t0 = time.perf_counter()
    train_epoch(model, opt, task, cfg, 2, data, Hooks(stop_after_batches=steps))
    _sync(device)
    step_s = (time.perf_counter() - t0) / steps
    t0 = time.perf_counter()
    validate(model, task)
    text_diagnostics(model, task.val_groups)
    val_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluate(model, task, cfg, TrainState())
    test_s = time.perf_counter() - t0
    steps_per_epoch = COCO["train_captions"] // cfg.batch_size
    return {
        "device": str(device), "text_dim": text_dim, "batch": cfg.batch_size,
        "epochs": cfg.epochs, "steps_per_epoch": steps_per_epoch,
        "step_ms": 1000 * step_s, "val_s": val_s, "test_eval_s": test_s,
        "epoch_s": steps_per_epoch * step_s + val_s,
        "arm_s": cfg.epochs * (steps_per_epoch * step_s + val_s) + test_s,
        "synthetic_data_s": t_data, "to_device_s": t_move,
        "peak_host_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_device_MB": (torch.cuda.max_memory_allocated() / 2**20
                           if device.type == "cuda" else float("nan")),
        "scale": scale,
    }


def project(rows: dict, one_time: dict | None = None) -> dict:
    """Wall time of the paper grid from per-tower measurements ``rows`` (tower -> measure()).

    ``main grid``: the towers x the registered arms at their seeds, default length. ``reproduce
    grid``: that plus the lambda curves at each matched learning rate (:func:`curve_runs`)
    and the matched PATR, M3 pairs continued to twice the length (5 seeds; only the added
    epochs count, the first half is the default run's).
    ``one_time`` (:func:`one_time_costs`): the first run's extraction, added separately for
    the towers in ``rows``.
    """

    main = sum(sum(len(a.seeds_of(SEEDS)) for a in ARMS.values()) * r["arm_s"] for r in rows.values())
    longs = sum(len(a.seeds_of(SEEDS)) for a in grid_arms() if a.kind == "long")
    extra = sum((curve_runs() + longs) * r["arm_s"]  # long: 30 more epochs
                for r in rows.values())
    out = {"main_grid_min": main / 60, "reproduce_grid_min": (main + extra) / 60}
    if one_time:
        first = one_time["resnet152_features_min"] + sum(
            one_time.get(f"{t}_features_min", 0.0) for t in rows)
        out["one_time_min"] = first
        out["first_reproduce_min"] = out["reproduce_grid_min"] + first
    return out


def paper_tower_dims() -> dict:
    """Text tower -> feature width, for the towers of the paper profile's grid (registry order)."""
    return {name: t.dim for name, t in TEXT_TOWERS.items()
            if tower_excluded(name, "paper") is None}


def bench_paper_scale(steps: int = 30, scale: float = 1.0, towers=None,
                      n_images: int = 64, n_captions: int = 512) -> list[dict]:
    """Measure the text width of each paper-profile tower (mBERT 768, mUSE 512) and the
    one-time extraction; print them and the projection."""
    dims = paper_tower_dims()
    towers = tuple(dims) if towers is None else towers
    rows = {}
    for tower in towers:
        rows[tower] = {"tower": tower, **measure(dims[tower], steps, scale)}
    print_rows(list(rows.values()))
    x = measure_extraction(n_images, n_captions, towers=towers)
    once = one_time_costs(x)
    print_rows([x])
    proj = project(rows, once)
    device = next(iter(rows.values()))["device"]
    epochs = rows[towers[0]]["epochs"]
    print(f"one-time on {x['device']} (first run only, cached after): ResNet-152 features of "
          f"{ONE_TIME['images']:,} images {once['resnet152_features_min']:.1f} min; "
          + "; ".join(f"{t} features of {ONE_TIME['captions']:,} captions "
                      f"{once[f'{t}_features_min']:.1f} min" for t in towers
                      if f"{t}_features_min" in once) + ".")
    print(f"projection on {device}: main grid ({len(towers)} towers x {len(ARMS)} variants at "
          f"their seeds, up to {len(SEEDS)}, {epochs} epochs): {proj['main_grid_min']:.1f} min; full "
          f"reproduce grid (+ λ curve, + twice the length): {proj['reproduce_grid_min']:.1f} "
          f"min; plus the one-time extraction: {proj['first_reproduce_min']:.1f} min for a "
          "first run. Downloads, tables, figures and notebooks not included (repro/bench/scale.py).")
    return ([dict(r) for r in rows.values()] + [{"tower": "extraction", **x}]
            + [{"tower": "projection", **proj, **once}])
