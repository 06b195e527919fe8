"""Benchmarks that print figures: ``python -m repro.bench {metrics,train,defaults,numerics,paper-scale,features}``.

Every figure is a ratio against a baseline measured in the same run on the same inputs,
so the numbers are comparable across machines. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

import numpy as np


def _measure(fn, *args):
    """Run ``fn(*args)`` once; return (result, seconds, peak MB allocated through numpy/Python)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, seconds, peak / 2**20


def argsort_ranks(scores: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Naive baseline: stable full argsort of every row, then the position of the positive."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return 1 + np.argmax(order == positives[:, None], axis=1)


def argsort_report(scores: np.ndarray, image_of_caption: np.ndarray) -> dict:
    """Naive t2i + i2t ranks by full argsort (the baseline the counting evaluator replaces)."""
    t2i = argsort_ranks(scores, image_of_caption)
    order = np.argsort(-scores.T, axis=1, kind="stable")
    is_pos = image_of_caption[order] == np.arange(scores.shape[1])[:, None]
    i2t = 1 + np.argmax(is_pos, axis=1)
    return {"t2i_meanr": float(t2i.mean()), "i2t_meanr": float(i2t.mean())}


def bench_metrics(seed: int = 0) -> list[dict]:
    """Time and peak memory of the evaluator against naive baselines; prints a table."""
    from repro import metrics

    rng = np.random.default_rng(seed)
    rows = []
    for name, n_images, per_image in (("XTD10 1k x 1k", 1000, 1), ("COCO-5K 25k x 5k", 5000, 5)):
        g = np.repeat(np.arange(n_images), per_image)
        text = rng.standard_normal((g.size, 512), dtype=np.float32)
        image = rng.standard_normal((n_images, 512), dtype=np.float32)
        # Correlate captions with their images so ranks are not all near the middle.
        text += 0.5 * image[g]
        scores, t_prod, m_prod = _measure(np.matmul, text, image.T)
        base, t_base, m_base = _measure(argsort_report, scores, g)
        ours, t_ours, m_ours = _measure(metrics.retrieval_report, scores, g)
        emb, t_emb, m_emb = _measure(metrics.retrieval_report_from_embeddings, text, image, g)
        assert abs(base["t2i_meanr"] - ours["t2i_meanr"]) < 1e-9, "baseline disagrees"
        assert abs(base["i2t_meanr"] - ours["i2t_meanr"]) < 1e-9, "baseline disagrees"
        rows.append({
            "case": name,
            "argsort_s": t_base, "argsort_MB": m_base,
            "report_s": t_ours, "report_MB": m_ours,
            "speedup_vs_argsort": t_base / t_ours,
            "matmul_s": t_prod, "matmul_MB": m_prod,
            "from_embeddings_s": t_emb, "from_embeddings_MB": m_emb,
            "embeddings_over_matmul": t_emb / t_prod,
            "same_report": emb == ours,
        })
    _print_rows(rows)
    return rows


#: Training settings tried for the mini defaults (chosen on English validation R-sum only).
DEFAULT_CANDIDATES = (
    {"sample_per_image": True, "batch_size": 128, "lr": 1e-3, "head_hidden": 1024},
    {"sample_per_image": False, "batch_size": 128, "lr": 1e-3, "head_hidden": 1024},
    {"sample_per_image": False, "batch_size": 128, "lr": 3e-3, "head_hidden": 1024},
    {"sample_per_image": False, "batch_size": 256, "lr": 1e-3, "head_hidden": 1024},
    {"sample_per_image": False, "batch_size": 128, "lr": 1e-3, "head_hidden": 512},
    {"sample_per_image": False, "batch_size": 128, "lr": 3e-3, "head_hidden": 512},
    {"sample_per_image": False, "batch_size": 256, "lr": 1e-3, "head_hidden": 512},
    {"sample_per_image": False, "batch_size": 256, "lr": 3e-3, "head_hidden": 512},
)
EPOCH_BUDGETS = (20, 30, 40, 60)


def bench_defaults(seed: int = 0, arms=("PATR", "M3")) -> list[dict]:
    """English-validation R-sum of each candidate setting (PATR and M3, one seed).

    One run of ``max(EPOCH_BUDGETS)`` epochs per setting and arm: the first E epochs of it are
    exactly an E-epoch run (no schedule; per-epoch seeded batches), so the best validation
    R-sum within E epochs is what an E-epoch run would select. Test data is never read.
    """
    import tempfile
    from pathlib import Path

    from repro.config import make_config
    from repro.reproduce import ARMS
    from repro.tasks import build_task
    from repro.trainer import train

    task = build_task(make_config("mini"), with_xtd10=False)
    rows = []
    for cand in DEFAULT_CANDIDATES:
        sets = [f"{k}={v}" for k, v in cand.items()]
        logs = {}
        for arm in arms:
            cfg = make_config("mini", sets + ARMS[arm] + [f"epochs={max(EPOCH_BUDGETS)}"],
                              seed=seed)
            with tempfile.TemporaryDirectory() as d:
                _, state = train(cfg, Path(d), task, resume=False, checkpoint_seconds=1e9)
            logs[arm] = state["log"]
        steps = len(logs[arms[0]]) and _steps_per_epoch(task, cfg)
        for epochs in EPOCH_BUDGETS:
            best = {a: max(e["val_rsum"] for e in logs[a][:epochs]) for a in arms}
            secs = np.mean([e["seconds"] for a in arms for e in logs[a][:epochs]])
            rows.append({**{k: str(v) for k, v in cand.items()}, "epochs": epochs,
                         "steps": epochs * steps,
                         **{f"val_rsum_{a}": best[a] for a in arms},
                         "val_rsum_mean": float(np.mean(list(best.values()))),
                         "train_s_per_arm": float(secs * epochs)})
            print(json.dumps(rows[-1]), flush=True)
    _print_rows(rows)
    return rows


def _steps_per_epoch(task, cfg) -> int:
    n = task.train_images.shape[0] if cfg.sample_per_image else task.train_text.item.shape[0]
    return n // cfg.batch_size


def bench_features() -> list[dict]:
    """Cold EfficientNet-Lite0 feature extraction of every emoji image into an empty cache,
    then a cached read. Run it with nothing else busy."""
    import tempfile
    from pathlib import Path

    from repro import backbones, data

    paths = data.emoji_image_paths(data.load_emoji())
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        feats = backbones.image_features("efficientnet_lite0", "imagenet", paths, root=Path(d))
        t1 = time.perf_counter()
        backbones.image_features("efficientnet_lite0", "imagenet", paths, root=Path(d))
        t2 = time.perf_counter()
    rows = [{"images": len(paths), "feature_dim": feats.shape[1], "extract_s": t1 - t0,
             "cached_read_s": t2 - t1}]
    _print_rows(rows)
    return rows


_PIN_PROBE = r"""
import json, time, repro, torch
from repro.backbones import build_effnet
from repro.config import make_config
from repro.losses import compute_loss
from repro.model import DualEncoder
torch.manual_seed(0); torch.set_num_threads(2)
cfg = make_config("mini")
m = DualEncoder(cfg, 512, 1280); opt = torch.optim.AdamW(m.parameters(), cfg.lr)
t, v = torch.randn(cfg.batch_size, 512), torch.randn(cfg.batch_size, 1280)
item, g = torch.arange(cfg.batch_size), torch.Generator().manual_seed(0)
def step():
    loss, _ = compute_loss(cfg, m.encode_text(t), m.encode_image(v), item, g)
    opt.zero_grad(); loss.backward(); opt.step()
for _ in range(5): step()
t0 = time.perf_counter()
for _ in range(60): step()
step_ms = (time.perf_counter() - t0) / 60 * 1000
net = build_effnet("none").to(memory_format=torch.channels_last)
x = torch.randn(64, 3, 224, 224).contiguous(memory_format=torch.channels_last)
with torch.inference_mode():
    net(x[:8]); t0 = time.perf_counter(); net(x); img_ms = (time.perf_counter() - t0) / 64 * 1000
print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(),
                  "train_step_ms": step_ms, "effnet_ms_per_image": img_ms}))
"""


def bench_numerics(repeats: int = 3) -> list[dict]:
    """Speed cost of the CPU-numerics pins: a training step of the default heads and
    EfficientNet-Lite0 feature extraction, pinned vs native, in fresh processes (alternating,
    best of ``repeats``). Run it with nothing else busy."""
    import os
    import subprocess
    import sys

    from repro import numerics

    best = {}
    for _ in range(repeats):
        for mode in ("native", "pinned"):
            env = {k: v for k, v in os.environ.items() if k not in numerics.PINS}
            env["XLIR_NUMERICS"] = mode
            out = subprocess.run([sys.executable, "-c", _PIN_PROBE], env=env, check=True,
                                 capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            prev = best.get(mode)
            best[mode] = r if prev is None else {
                k: (min(v, prev[k]) if isinstance(v, float) else v) for k, v in r.items()}
    rows = [{"numerics": m, **best[m]} for m in ("native", "pinned")]
    rows.append({"numerics": "pinned / native", "capability": "",
                 "train_step_ms": best["pinned"]["train_step_ms"] / best["native"]["train_step_ms"],
                 "effnet_ms_per_image": best["pinned"]["effnet_ms_per_image"]
                 / best["native"]["effnet_ms_per_image"]})
    _print_rows(rows)
    return rows


def _print_rows(rows: list[dict]) -> None:
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()]
        print("| " + " | ".join(cells) + " |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m repro.bench", description=__doc__)
    parser.add_argument("what", choices=["metrics", "train", "defaults", "numerics", "paper-scale",
                                         "features"])
    parser.add_argument("--steps", type=int, default=30, help="paper-scale: steps timed per tower")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="paper-scale: data set size factor (tests); shapes stay the paper's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = parser.parse_args(argv)
    if args.what == "metrics":
        rows = bench_metrics(args.seed)
    elif args.what == "features":
        rows = bench_features()
    elif args.what == "paper-scale":
        from repro.scale import bench_paper_scale

        rows = bench_paper_scale(args.steps, args.scale)
    elif args.what == "numerics":
        rows = bench_numerics()
    elif args.what == "defaults":
        rows = bench_defaults(args.seed)
    else:
        from repro.trainer import bench_train

        rows = bench_train(args.seed)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
