"""Benchmarks that print figures: ``python -m repro.bench {metrics,train}``.

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


def _print_rows(rows: list[dict]) -> None:
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()]
        print("| " + " | ".join(cells) + " |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m repro.bench", description=__doc__)
    parser.add_argument("what", choices=["metrics", "train"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = parser.parse_args(argv)
    if args.what == "metrics":
        rows = bench_metrics(args.seed)
    else:
        from repro.trainer import bench_train

        rows = bench_train(args.seed)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
