"""``python -m repro.bench WHAT``: benchmarks, the settings sweep, and the GPU checks.

- Benchmarks (``metrics``, ``train``, ``run``, ``numerics``, ``features``, ``jobs``, ``search``): every
  figure is a ratio against a baseline measured in the same run on the same inputs, so the
  numbers are comparable across machines; ``query``: the Python API's first query against its
  later ones, in the same process. Nothing here asserts a time.
- ``defaults``: the settings sweep that chooses every arm's settings on English validation
  (:mod:`repro.experiments.sweep`; its record is docs/sweeps/defaults_mini.json).
- ``paper-scale``, ``gpu-check``: the paper profile at COCO scale, simulated, and what a GPU
  does to this package (:mod:`repro.bench.scale`, :mod:`repro.bench.gpucheck`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

from repro.bench.gpucheck import gpu_check
from repro.bench.scale import bench_paper_scale
from repro.config import make_config
from repro.core import numerics
from repro.core.errors import ReproError
from repro.data import emoji
from repro.design import ARMS
from repro.experiments.reproduce import run_grid
from repro.experiments.sweep import bench_defaults, bench_defaults_paper, bench_defaults_tower
from repro.model.encoder import DualEncoder
from repro.model.losses import compute_loss
from repro.report.common import print_rows
from repro.scoring import metrics
from repro.towers import backbones
from repro.towers.text import MuseTower
from repro.training.evaluation import text_diagnostics, validate
from repro.training.tasks import build_task
from repro.training.trainer import (TrainData, epoch_batches, epoch_generator, seed_everything,
                                    train_and_evaluate)


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
        assert abs(base["t2i_meanr"] - ours["t2i_meanr"]) < 1e-9, "baseline disagrees"
        assert abs(base["i2t_meanr"] - ours["i2t_meanr"]) < 1e-9, "baseline disagrees"
        rows.append({
            "case": name,
            "argsort_s": t_base, "argsort_MB": m_base,
            "report_s": t_ours, "report_MB": m_ours,
            "speedup_vs_argsort": t_base / t_ours,
            "matmul_s": t_prod, "matmul_MB": m_prod,
        })
    print_rows(rows)
    return rows


def bench_search(n_images: int = 10_000, dim: int = 512, k: int = 5, repeats: int = 20,
                 seed: int = 0) -> list[dict]:
    """One query over ``n_images`` cached image embeddings: :func:`repro.app.search.top_k` (one
    matrix product) against a loop with one dot product per image, same top ``k``."""
    from repro.app.search import top_k

    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n_images, dim), dtype=np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    query = images[:1] + 0.1 * rng.standard_normal((1, dim), dtype=np.float32)

    def loop():
        scores = [float(row @ query[0]) for row in images]
        return sorted(range(n_images), key=lambda i: -scores[i])[:k]

    def timed(fn, *args):  # no tracemalloc: it would slow the loop's allocations most
        t0 = time.perf_counter()
        out = fn(*args)
        return out, time.perf_counter() - t0

    ours = [timed(top_k, query, images, k) for _ in range(repeats)]
    base = [timed(loop) for _ in range(3)]
    assert ours[0][0][0][0].tolist() == base[0][0], "the loop disagrees"
    t_ours = float(np.median([t for _, t in ours]))
    t_base = float(np.median([t for _, t in base]))
    rows = [{"case": f"1 query x {n_images:,} images, {dim}-d, top {k}", "top_k_ms": 1e3 * t_ours,
             "loop_ms": 1e3 * t_base, "speedup_vs_loop": t_base / t_ours}]
    print_rows(rows)
    return rows


#: The queries of :func:`bench_query`: Spanish names of animals and things.
BENCH_QUERIES = ("gato", "perro", "caballo", "manzana", "coche", "sol", "luna", "pizza",
                 "corazón rojo", "cara sonriente", "árbol", "pez")


def bench_query(source: str, lang: str = "es", k: int = 5) -> list[dict]:
    """Milliseconds of a query with the Python API (:func:`repro.app.load`) on the model of
    ``source`` (a run or export folder): loading it, the first query (which loads the text
    tower and embeds the test images), each later query (one at a time, median and max), and
    all of :data:`BENCH_QUERIES` in one call; and how often the tower was loaded (once)."""
    from repro.app import load

    def ms(fn, *args, **kw):
        t0 = time.perf_counter()
        fn(*args, **kw)
        return 1e3 * (time.perf_counter() - t0)

    t0 = time.perf_counter()
    m = load(source)
    load_ms = 1e3 * (time.perf_counter() - t0)
    first = ms(m.search, [BENCH_QUERIES[0]], lang, k)
    later = [ms(m.search, [q], lang, k) for q in BENCH_QUERIES[1:]]
    batch = ms(m.search, list(BENCH_QUERIES), lang, k)
    rows = [{"case": "load the model (heads only)", "ms": load_ms, "tower_loads": 0},
            {"case": "first query (loads the tower, embeds 500 test images)", "ms": first,
             "tower_loads": 1},
            {"case": f"later query, median of {len(later)}", "ms": float(np.median(later)),
             "tower_loads": m.tower_loads},
            {"case": f"later query, max of {len(later)}", "ms": max(later),
             "tower_loads": m.tower_loads},
            {"case": f"{len(BENCH_QUERIES)} queries in one call", "ms": batch,
             "tower_loads": m.tower_loads}]
    print_rows(rows)
    return rows


def bench_train(seed: int = 0) -> list[dict]:
    """Seconds per epoch, wall time and peak memory of one mini arm (M3 with its settings);
    mUSE throughput; milliseconds per training step by part (:func:`step_breakdown`)."""

    texts = [f"a small picture of thing number {i}" for i in range(2000)]
    tower = MuseTower()
    tower.encode(texts[:10])
    t0 = time.perf_counter()
    tower.encode(texts)
    muse_rate = len(texts) / (time.perf_counter() - t0)
    cfg = make_config("mini", ARMS["M3"].overrides(), seed=seed)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        task = build_task(cfg)
        t_task = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = train_and_evaluate(cfg, Path(d), resume=False, task=task)
        wall = time.perf_counter() - t0
        log = [json.loads(l) for l in (Path(d) / "log.jsonl").read_text().splitlines()]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = {"arm": cfg.arm, "epochs": cfg.epochs,
           "seconds_per_epoch": float(np.mean([e["seconds"] for e in log])),
           "task_build_s (features cached)": t_task, "train_and_eval_s": wall,
           "peak_rss_MB": peak_mb, "muse_sentences_per_s": muse_rate,
           "t2i_R@1_en": res.retrieval["en"]["t2i_R@1"]}
    for k, v in row.items():
        print(f"{k:>32}: {v:.3f}" if isinstance(v, float) else f"{k:>32}: {v}")
    print()
    steps = step_breakdown(task, cfg)
    print_rows(steps)
    return [row] + steps


def step_breakdown(task, cfg, steps: int = 60, warmup: int = 5) -> list[dict]:
    """Milliseconds per mini training step by part (forward incl. loss, backward, optimizer),
    for the per-tensor AdamW loop (foreach, PyTorch's default) and the fused AdamW the trainer
    uses, plus the evaluation run after every epoch (English validation and text
    diagnostics). Real task, real batches; best of three blocks of ``steps`` steps."""
    seed_everything(cfg)
    data = TrainData.of(task, torch.device("cpu"), cfg.mask_same_text)
    batches = epoch_batches(task, cfg, epoch_generator(cfg, 1))
    rows = []
    for fused in (False, True):
        model = DualEncoder(cfg, task.text_dim, task.image_feat_dim)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                fused=fused, foreach=None if fused else True)
        best = None
        for block in range(3):
            parts = np.zeros(3)
            for i in range(warmup + steps):
                caps = batches[i % len(batches)]
                t0 = time.perf_counter()
                item = data.item[caps]
                loss, _ = compute_loss(cfg, model.encode_text(data.feats[caps]),
                                       model.encode_image(data.images[item]), item,
                                       data.text_id[caps] if data.text_id is not None else None)
                t1 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                t2 = time.perf_counter()
                opt.step()
                t3 = time.perf_counter()
                if i >= warmup:
                    parts += (t1 - t0, t2 - t1, t3 - t2)
            ms = parts / steps * 1000
            best = ms if best is None or ms.sum() < best.sum() else best
        t0 = time.perf_counter()
        validate(model, task)
        text_diagnostics(model, task.val_groups)
        eval_ms = (time.perf_counter() - t0) * 1000
        rows.append({"optimizer": "AdamW fused" if fused else "AdamW foreach (default)",
                     "forward_ms": float(best[0]), "backward_ms": float(best[1]),
                     "optimizer_ms": float(best[2]), "step_ms": float(best.sum()),
                     "evaluation_per_epoch_ms": eval_ms})
    return rows


def bench_features() -> list[dict]:
    """Cold EfficientNet-Lite0 feature extraction of every emoji image into an empty cache,
    then a cached read. Run it with nothing else busy."""
    paths = emoji.emoji_image_paths(emoji.load_emoji())
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        feats = backbones.image_features("efficientnet_lite0", "imagenet", paths, root=Path(d))
        t1 = time.perf_counter()
        backbones.image_features("efficientnet_lite0", "imagenet", paths, root=Path(d))
        t2 = time.perf_counter()
    rows = [{"images": len(paths), "feature_dim": feats.shape[1], "extract_s": t1 - t0,
             "cached_read_s": t2 - t1}]
    print_rows(rows)
    return rows


_PIN_PROBE = r"""
import json, time, repro, torch
from repro.config import make_config
from repro.model.encoder import DualEncoder
from repro.model.losses import compute_loss
from repro.towers.backbones import build_effnet
torch.manual_seed(0); torch.set_num_threads(2)
cfg = make_config("mini")
m = DualEncoder(cfg, 512, 1280); opt = torch.optim.AdamW(m.parameters(), cfg.lr)
t, v = torch.randn(cfg.batch_size, 512), torch.randn(cfg.batch_size, 1280)
item, g = torch.arange(cfg.batch_size), torch.Generator().manual_seed(0)
def step():
    loss, _ = compute_loss(cfg, m.encode_text(t), m.encode_image(v), item, None, g)
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
    print_rows(rows)
    return rows


def bench_jobs(seeds=(0, 1, 2, 3), jobs=(1, 2)) -> list[dict]:
    """Full-length PATR and M3 runs of the mUSE tower (features cached first, so only the
    runs are timed), the whole set at each ``--jobs`` value, into empty runs folders; the
    speed-up is against ``--jobs`` 1 in the same call, and every run's metrics.json must be
    the same bytes at every value. Run it with nothing else busy."""
    quiet = dict(seeds=tuple(seeds), arms=("PATR", "M3"), towers=("muse",), log=lambda *_: None)
    rows, first = [], {}
    with tempfile.TemporaryDirectory() as d:
        run_grid("mini", Path(d) / "warm", jobs=max(jobs), **dict(quiet, seeds=()))  # features
        for j in jobs:
            t0 = time.perf_counter()
            grid = run_grid("mini", Path(d) / f"jobs{j}", jobs=j, **quiet)
            wall = time.perf_counter() - t0
            bits = {k: (p / "metrics.json").read_bytes() for k, p in grid.run_dirs.items()}
            first = first or bits
            rows.append({"jobs": j, "runs": len(bits), "wall_s": wall,
                         "runs_per_min": 60 * len(bits) / wall,
                         "speedup_vs_jobs_1": rows[0]["wall_s"] / wall if rows else 1.0,
                         "same_bits_as_jobs_1": bits == first})
    print_rows(rows)
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m repro.bench", description=__doc__)
    parser.add_argument("what", choices=["metrics", "train", "defaults", "numerics", "paper-scale",
                                         "features", "gpu-check", "jobs", "search", "run",
                                         "query"])
    parser.add_argument("--out", default="gpu_check.json", help="gpu-check: the JSON it writes")
    parser.add_argument("--device", default=None,
                        help="gpu-check: run on this device instead of the GPU (tests: cpu)")
    parser.add_argument("--tiny", action="store_true",
                        help="gpu-check: tiny sizes (tests), not the 8-minute check")
    parser.add_argument("--steps", type=int, default=30, help="paper-scale: steps timed per tower")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="paper-scale: data set size factor (tests); shapes stay the paper's")
    parser.add_argument("--images", type=int, default=64,
                        help="paper-scale: generated COCO-size JPEGs timed through ResNet-152")
    parser.add_argument("--captions", type=int, default=512,
                        help="paper-scale: generated COCO-length captions timed per text tower")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", metavar="DIR", help="query: the run or export folder whose "
                        "model answers (python -m repro train ... --out DIR)")
    parser.add_argument("--profile", choices=["mini", "paper"], default="mini",
                        help="defaults: the profile whose settings are swept (paper: COCO at "
                        "XLIR_COCO_DIR; default mini)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="defaults --profile paper: a config override of every run")
    parser.add_argument("--arm", action="append", default=[],
                        help="defaults --profile paper: sweep only this arm (repeatable)")
    parser.add_argument("--tower", default=None,
                        help="defaults: sweep this text tower's own settings (e5: output "
                        "preprocessing x learning rate for PATR and M3) instead of the arms'")
    parser.add_argument("--jobs", type=int, default=None,
                        help="defaults: worker processes, each run on one thread (default: the "
                        "usable cores; paper: 1)")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except ReproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args) -> int:
    if args.what == "metrics":
        rows = bench_metrics(args.seed)
    elif args.what == "features":
        rows = bench_features()
    elif args.what == "paper-scale":
        rows = bench_paper_scale(args.steps, args.scale, n_images=args.images,
                                 n_captions=args.captions)
    elif args.what == "numerics":
        rows = bench_numerics()
    elif args.what == "jobs":
        rows = bench_jobs()
    elif args.what == "search":
        rows = bench_search(seed=args.seed)
    elif args.what == "query":
        if not args.run:
            raise ReproError("query: give --run DIR (a finished run or an export folder)")
        rows = bench_query(args.run)
    elif args.what == "run":
        from repro.bench.phases import bench_run

        rows = bench_run(args.seed)
    elif args.what == "defaults":
        if args.jobs is not None and args.jobs < 1:
            raise ReproError(f"--jobs {args.jobs}: must be at least 1")
        if args.profile == "paper":
            bench_defaults_paper(args.set, args.arm or None, jobs=args.jobs or 1)
        elif args.tower:
            bench_defaults_tower(args.tower, jobs=args.jobs)
        else:
            bench_defaults(jobs=args.jobs)
        return 0
    elif args.what == "gpu-check":
        gpu_check(Path(args.out), args.device, args.tiny)
        return 0
    else:
        rows = bench_train(args.seed)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
