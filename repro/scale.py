"""``python -m repro.bench paper-scale``: the `paper` profile at COCO scale, simulated.

Synthetic cached features of the paper's shapes go through the real trainer and evaluator on
whatever device is present:

* training: 118,287 images x 2048 (ResNet-152 pooled) and 591,753 English captions x 512 (mUSE)
  or 768 (mBERT), the `paper` profile's heads, loss, batch and optimizer;
* selection: 5,000 validation images with 25,000 captions, every epoch;
* test: 1,000 XTD10 images x 11 languages (retrieval, alignment, text clusters), once per arm.

It times ``steps`` optimizer steps (after a warm-up), one validation and one test evaluation,
and projects the wall time of the paper grid from them. The projection **includes** training,
per-epoch validation and diagnostics and the test evaluation of every arm; it **leaves out**
one-time work (downloading COCO, ResNet-152 features of ~124k images, text-tower features of
~620k captions, all cached after the first run), tables, figures and notebooks, and assumes
the measured step time holds over a whole epoch (synthetic features: same shapes and costs as
real ones, different values). ``scale`` < 1 shrinks the data sets (tests; memory figures then
do not describe COCO) but never the per-step shapes.
"""

from __future__ import annotations

import resource
import time

import numpy as np
import torch

from repro.config import make_config
from repro.data import LANGS
from repro.evaluation import evaluate, text_diagnostics, validate
from repro.grid import ARMS, LAMBDA_ARMS, LAMBDA_SEEDS, LONG_ARMS, SEEDS
from repro.model import DualEncoder
from repro.tasks import Task, TextSet
from repro.trainer import TrainData, make_optimizer, seed_everything, train_epoch
from repro.report import print_rows

COCO = {"train_images": 118_287, "train_captions": 591_753, "val_images": 5_000,
        "val_captions": 25_000, "test_images": 1_000}
IMAGE_DIM = 2048


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
    return Task("paper", text_dim, IMAGE_DIM, feats(n["train_images"], IMAGE_DIM), train_text,
                feats(n["val_images"], IMAGE_DIM), val_text, val_text,
                feats(n["test_images"], IMAGE_DIM), test_text, {}, test_text)


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
    train_epoch(model, opt, task, cfg, 1, data, max_batches=warm)
    _sync(device)
    t0 = time.perf_counter()
    train_epoch(model, opt, task, cfg, 2, data, max_batches=steps)
    _sync(device)
    step_s = (time.perf_counter() - t0) / steps
    t0 = time.perf_counter()
    validate(model, task)
    text_diagnostics(model, task.val_groups)
    val_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluate(model, task, cfg, {"log": [], "epoch": 0, "best_epoch": 0})
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


def project(rows: dict) -> dict:
    """Wall time of the paper grid from per-tower measurements ``rows`` (tower -> measure()).

    ``issue grid``: 2 towers x 5 variants x 5 seeds at the default length. ``reproduce grid``:
    that plus M3 at lambda 0.1 / 0.3 / 3 (3 seeds) and PATR, M3 continued to twice the length
    (5 seeds; only the added epochs count, the first half is the default run's).
    """

    issue = sum(len(ARMS) * len(SEEDS) * r["arm_s"] for r in rows.values())
    extra = sum(len(LAMBDA_ARMS) * len(LAMBDA_SEEDS) * r["arm_s"]
                + len(LONG_ARMS) * len(SEEDS) * r["arm_s"]  # 30 more epochs + a test evaluation
                for r in rows.values())
    return {"issue_grid_min": issue / 60, "reproduce_grid_min": (issue + extra) / 60}


def bench_paper_scale(steps: int = 30, scale: float = 1.0, towers=("mbert", "muse")) -> list[dict]:
    """Measure both text widths (mBERT 768, mUSE 512), print them and the projection."""

    dims = {"mbert": 768, "muse": 512}
    rows = {}
    for tower in towers:
        rows[tower] = {"tower": tower, **measure(dims[tower], steps, scale)}
    print_rows(list(rows.values()))
    proj = project(rows)
    device = next(iter(rows.values()))["device"]
    print(f"projection on {device}: issue grid (2 towers x 5 variants x 5 seeds, "
          f"{rows[towers[0]]['epochs']} epochs): {proj['issue_grid_min']:.1f} min; full reproduce "
          f"grid (+ lambda curve, + twice the length): {proj['reproduce_grid_min']:.1f} min. "
          "Includes training, per-epoch validation, test evaluation; excludes one-time feature "
          "extraction and downloads (see repro/scale.py).")
    return [dict(r) for r in rows.values()] + [{"tower": "projection", **proj}]
