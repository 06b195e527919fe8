"""``python -m repro.bench run``: one mini run's wall time split into its phases, beside the
GEMM floor of its shapes measured in the same process.

The floor: every matrix product one optimizer step must do (each linear layer of both heads
forward, its weight gradient, and its input gradient except for the first layers, whose
inputs are frozen features; the loss's batch similarity matrix forward and backward), each
timed alone with ``torch.mm`` on this thread at its exact shape (best of several), summed
over the run's optimizer steps. The phases are measured by timing the trainer's own
functions during one real ``train_and_evaluate`` (start-up in a fresh interpreter).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from repro.config import make_config
from repro.design import ARMS
from repro.report.common import print_rows
from repro.training import trainer
from repro.training.tasks import build_task

#: trainer functions timed, phase name -> attribute of repro.training.trainer; none of them
#: calls another, except that "epochs of optimizer steps" includes "loss".
TIMED = {"epochs of optimizer steps": "train_epoch", "loss": "compute_loss",
         "validation (English, every epoch)": "validate",
         "text diagnostics (every epoch)": "text_diagnostics", "log lines": "_log_line",
         "serialising checkpoints and the model": "_state_bytes",
         "file writes (log, checkpoints, model, ranks)": "atomic_write_bytes",
         "test evaluation": "evaluate", "test ranks": "test_ranks"}


def gemm_shapes(cfg, task) -> list[tuple[int, int, int]]:
    """(m, k, n) of every matrix product of one optimizer step (batch ``cfg.batch_size``)."""
    from repro.model.encoder import DualEncoder

    model = DualEncoder(cfg, task.text_dim, task.image_feat_dim)
    b, shapes = cfg.batch_size, []
    for side in (model.text_head, model.image_head):
        linears = [m for m in side.modules() if isinstance(m, torch.nn.Linear)]
        for i, lin in enumerate(linears):
            k, n = lin.in_features, lin.out_features
            shapes += [(b, k, n), (n, b, k)]            # forward; weight gradient
            if i > 0:
                shapes.append((b, n, k))                # input gradient
    d = model.out_dim
    shapes += [(b, d, b), (b, b, d), (b, b, d)]         # t @ v.T forward; both gradients
    return shapes  # M3's text-text term is a row-wise product: no matrix product


def gemm_seconds(shapes, repeats: int = 30) -> float:
    """Seconds of one pass over ``shapes``: each product's best time of ``repeats``."""
    total = 0.0
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t0)
        total += best
    return total


def bare_step_seconds(cfg, task, steps: int = 200, warmup: int = 20) -> float:
    """Seconds of one bare PyTorch step at the run's shapes: both heads forward on random
    features, the similarity matrix summed as the loss, backward, fused AdamW. What the
    framework itself costs per step, without the package's loss, batching or diagnostics."""
    from repro.model.encoder import DualEncoder

    model = DualEncoder(cfg, task.text_dim, task.image_feat_dim)
    opt = trainer.make_optimizer(model, cfg)
    x_t = torch.randn(cfg.batch_size, task.text_dim)
    x_v = torch.randn(cfg.batch_size, task.image_feat_dim)
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        t, v = model.encode_text(x_t), model.encode_image(x_v)
        loss = (t @ v.T).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps


@contextmanager
def _timers(spent: dict):
    """Wrap the :data:`TIMED` functions of the trainer; add their seconds to ``spent``."""
    saved = {}

    def wrap(name, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0
        return timed

    try:
        for phase, attr in TIMED.items():
            saved[attr] = getattr(trainer, attr)
            setattr(trainer, attr, wrap(phase, saved[attr]))
        yield
    finally:
        for attr, fn in saved.items():
            setattr(trainer, attr, fn)


def startup_seconds() -> float:
    """A fresh interpreter importing the trainer (torch included): what a process pays once."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import repro.training.trainer"], check=True)
    return time.perf_counter() - t0


def bench_run(seed: int = 0, arm: str = "M3") -> list[dict]:
    """One mini run of ``arm``: its phases (seconds and share of the wall) and the floor."""
    torch.set_num_threads(1)
    cfg = make_config("mini", ARMS[arm].overrides(), seed=seed)
    start = startup_seconds()
    t0 = time.perf_counter()
    task = build_task(cfg)
    t_task = time.perf_counter() - t0
    spent = {}
    with tempfile.TemporaryDirectory() as d, _timers(spent):
        t0 = time.perf_counter()
        res = trainer.train_and_evaluate(cfg, Path(d), resume=False, task=task)
        wall = time.perf_counter() - t0
    floor = gemm_seconds(gemm_shapes(cfg, task)) * res.steps
    steps = spent.get("epochs of optimizer steps", 0.0) - spent.get("loss", 0.0)
    other = wall - sum(spent.values()) + spent.get("loss", 0.0)
    phases = [("start-up (fresh interpreter; once per worker)", start),
              ("task building (features cached; once per worker)", t_task),
              ("optimizer steps: heads, backward, AdamW", steps),
              *((p, spent.get(p, 0.0)) for p in TIMED if p != "epochs of optimizer steps"),
              ("other (model set-up, metrics.json, best model)", other)]
    rows = [{"phase": p, "seconds": s, "x_floor": s / floor} for p, s in phases]
    rows.append({"phase": f"run wall: train_and_evaluate, {res.steps} steps", "seconds": wall,
                 "x_floor": wall / floor})
    bare = bare_step_seconds(cfg, task) * res.steps
    rows.append({"phase": "bare PyTorch steps at those shapes (framework cost, no loss logic)",
                 "seconds": bare, "x_floor": bare / floor})
    rows.append({"phase": "GEMM floor of those steps (this process, one thread)",
                 "seconds": floor, "x_floor": 1.0})
    print_rows(rows)
    return rows
