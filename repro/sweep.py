"""The defaults sweeps (``python -m repro.bench defaults [--profile paper]``): every setting
of a grid declared here before it was run, trained with three seeds and ranked by English
validation only; test data is never read.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from repro.config import epochs_for_steps, make_config
from repro.emoji import TRAIN_CAPTIONS
from repro.errors import ReproError
from repro.grid import ARM_BASE
from repro.report import print_rows
from repro.tasks import build_task
from repro.trainer import train


#: The defaults sweep of the mini profile (README "Training defaults"), declared before it
#: was run. Every setting is ranked by its mean English-validation R-sum over SWEEP_SEEDS (the
#: best epoch of each run, as the run itself selects it); test data is never read.
SWEEP_SEEDS = (0, 1, 2)
SWEEP_LRS = (3e-4, 1e-3, 3e-3)
#: Stage 1: the training captions, with PATR and M3 at the v1 learning rate (1e-3).
CAPTION_ARMS = ("PATR", "M3")
#: Stage 2, on the chosen captions: each arm's own grid.
ARM_GRIDS = {
    "PATR": [{"lr": lr} for lr in SWEEP_LRS],
    "M3": [{"lr": lr} for lr in SWEEP_LRS],
    "PATR text_head=none": [{"lr": lr} for lr in SWEEP_LRS],
    "InfoNCE": [{"lr": lr, "tau": tau} for tau in (0.05, 0.1) for lr in SWEEP_LRS],
    # VSE++: its paper's lr 2e-4 and margin 0.2, and a warm-up on the sum of violations
    # before max violation (a way off the plateau), margin 0.1 with the warm-up.
    "VSE++": ([{"lr": lr, "vsepp_warmup_epochs": w} for w in (0, 5) for lr in (2e-4, 1e-3, 3e-3)]
              + [{"lr": lr, "vsepp_margin": 0.1, "vsepp_warmup_epochs": 5}
                 for lr in (2e-4, 1e-3, 3e-3)]),
}


#: A second real text tower's own sweep (issue 19), on the chosen captions: its output
#: preprocessing (raw features, or centered on the English training mean) crossed with the
#: learning rates, for PATR and M3. The best raw-feature setting of each arm is kept too: the
#: tower table shows both.
TOWER_GRIDS = {"e5": [{"text_preprocess": p, "lr": lr} for p in ("none", "center_en")
                      for lr in SWEEP_LRS]}
TOWER_SWEEP_ARMS = ("PATR", "M3")


def sweep_epochs(task, batch_size: int = 128) -> int:
    """Epochs that give :data:`repro.config.MINI_STEPS` optimizer steps on ``task``'s captions."""
    return epochs_for_steps(task.train_text.item.shape[0], batch_size)


def _sweep_runs(task, sets: list[str], log_path, profile: str = "mini") -> dict:
    """Train ``sets`` for every sweep seed (validation only); returns the row of the setting:
    mean and per-seed best validation R-sum, plateau escapes, seconds per run."""
    scores, escapes, secs = [], [], []
    for seed in SWEEP_SEEDS:
        cfg = make_config(profile, sets, seed=seed)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            _, state = train(cfg, Path(d), task, resume=False, checkpoint_seconds=1e9)
        secs.append(time.perf_counter() - t0)
        scores.append(max(e["val_rsum"] for e in state["log"]))
        escapes.append(state.get("escape_step"))
    row = {"settings": " ".join(sets), "val_rsum_mean": float(np.mean(scores)),
           "val_rsum_per_seed": ", ".join(f"{x:.1f}" for x in scores),
           "plateau_escape_steps": ", ".join(str(e) if e is not None else "never" for e in escapes),
           "s_per_run": float(np.mean(secs))}
    with open(log_path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)
    return row


def bench_defaults(out: str = "defaults_sweep.jsonl") -> dict:
    """The mini defaults sweep: stage 1 picks the training captions (PATR and M3), stage 2
    each arm's own settings on them. Prints every setting's validation score and the choice
    per arm as Markdown (the README's settings table); appends raw rows to ``out``."""
    tasks = {o: build_task(make_config("mini", [f"train_captions={o}"]), with_xtd10=False)
             for o in TRAIN_CAPTIONS}
    stage1 = []
    for option in TRAIN_CAPTIONS:
        epochs = sweep_epochs(tasks[option])
        for arm in CAPTION_ARMS:
            row = _sweep_runs(tasks[option], ARM_BASE[arm] + [f"train_captions={option}",
                                                               f"epochs={epochs}", "lr=0.001"], out)
            stage1.append({"stage": "1 captions", "arm": arm, **row})
    by_option = {o: np.mean([r["val_rsum_mean"] for r in stage1 if f"train_captions={o} " in r["settings"] + " "])
                 for o in TRAIN_CAPTIONS}
    chosen = max(TRAIN_CAPTIONS, key=lambda o: by_option[o])
    epochs = sweep_epochs(tasks[chosen])
    stage2 = []
    for arm, grid in ARM_GRIDS.items():
        for cand in grid:
            sets = ARM_BASE[arm] + [f"train_captions={chosen}", f"epochs={epochs}"]
            sets += [f"{k}={v}" for k, v in cand.items()]
            stage2.append({"stage": "2 " + arm, "arm": arm, **_sweep_runs(tasks[chosen], sets, out)})
    best = {arm: max((r for r in stage2 if r["arm"] == arm), key=lambda r: r["val_rsum_mean"])
            for arm in ARM_GRIDS}
    for r in stage1 + stage2:
        r["chosen"] = "yes" if (r in best.values() or (r in stage1 and f"train_captions={chosen} " in r["settings"] + " ")) else ""
    print("\ncaptions: mean validation R-sum of PATR and M3 per option: "
          + "; ".join(f"{o} {by_option[o]:.1f}" for o in TRAIN_CAPTIONS) + f" -> {chosen}")
    print_rows([{k: v for k, v in r.items()} for r in stage1 + stage2])
    print("\nchosen per arm: " + json.dumps({a: r["settings"] for a, r in best.items()}))
    return {"captions": chosen, "epochs": epochs, "arms": {a: r["settings"] for a, r in best.items()}}


def bench_defaults_tower(tower: str, out: str = "defaults_sweep_tower.jsonl") -> dict:
    """The mini sweep of ``tower`` (:data:`TOWER_GRIDS`): PATR and M3 on the config's default
    captions, each setting with :data:`SWEEP_SEEDS`, ranked by English validation. Returns,
    per arm, the best setting and the best one with raw features (``text_preprocess=none``)."""
    if tower not in TOWER_GRIDS:
        raise ReproError(f"--tower {tower}: no sweep declared; expected one of "
                         f"{', '.join(TOWER_GRIDS)}")
    tasks, rows = {}, []
    for cand in TOWER_GRIDS[tower]:
        key = cand["text_preprocess"]
        if key not in tasks:
            tasks[key] = build_task(make_config("mini", [f"text_tower={tower}",
                                                         f"text_preprocess={key}"]), with_xtd10=False)
        for arm in TOWER_SWEEP_ARMS:
            sets = ARM_BASE[arm] + [f"text_tower={tower}", f"epochs={sweep_epochs(tasks[key])}"]
            sets += [f"{k}={v}" for k, v in cand.items()]
            rows.append({"arm": arm, **_sweep_runs(tasks[key], sets, out)})
    best = {arm: max((r for r in rows if r["arm"] == arm), key=lambda r: r["val_rsum_mean"])
            for arm in TOWER_SWEEP_ARMS}
    raw = {arm: max((r for r in rows if r["arm"] == arm and "text_preprocess=none" in r["settings"]),
                    key=lambda r: r["val_rsum_mean"]) for arm in TOWER_SWEEP_ARMS}
    for r in rows:
        r["chosen"] = "yes" if r in best.values() else ("raw rows" if r in raw.values() else "")
    print_rows(rows)
    print(f"\nchosen per arm ({tower}): " + json.dumps({a: r["settings"] for a, r in best.items()}))
    print(f"raw-feature rows ({tower}): " + json.dumps({a: r["settings"] for a, r in raw.items()}))
    return {"arms": {a: r["settings"] for a, r in best.items()},
            "raw": {a: r["settings"] for a, r in raw.items()}, "rows": rows}


def bench_defaults_paper(sets=(), arms=None, out: str = "defaults_sweep_paper.jsonl") -> dict:
    """The paper profile's defaults sweep, for a user with COCO 2014 (and a GPU): each arm's
    grid of :data:`ARM_GRIDS` (stage 2 of the mini sweep; the caption option is the emoji
    benchmark's only) on COCO's English validation images, seeds :data:`SWEEP_SEEDS`, the
    paper profile's epochs. Only validation scores are read. ``arms``: a subset (tests)."""
    coco = os.environ.get("XLIR_COCO_DIR")
    base = ([f"coco_root={coco}"] if coco else []) + list(sets)
    task = build_task(make_config("paper", base))  # a one-line error without COCO
    rows = []
    for arm in arms or ARM_GRIDS:
        for cand in ARM_GRIDS[arm]:
            arm_sets = ARM_BASE[arm] + base + [f"{k}={v}" for k, v in cand.items()]
            rows.append({"arm": arm, **_sweep_runs(task, arm_sets, out, profile="paper")})
    best = {arm: max((r for r in rows if r["arm"] == arm), key=lambda r: r["val_rsum_mean"])
            for arm in dict.fromkeys(r["arm"] for r in rows)}
    for r in rows:
        r["chosen"] = "yes" if r in best.values() else ""
    print_rows(rows)
    print("\nchosen per arm (paper profile, COCO English validation): "
          + json.dumps({a: r["settings"] for a, r in best.items()}))
    return {"arms": {a: r["settings"] for a, r in best.items()}, "rows": rows}
