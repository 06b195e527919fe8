"""The defaults sweeps (``python -m repro.bench defaults [--profile paper]``): every setting
of a grid declared here before it was run, trained with five seeds and ranked by English
validation only; test data is never read.

Each run's best validation epoch is scored per validation item, so the choice can be
resampled (:func:`repro.scoring.stats.bootstrap_choice`): the record says how often each setting wins
when seeds and validation items are drawn again, and the interval of its mean. Runs go to
worker processes, each on one thread (the bits do not depend on the worker count).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from repro.config import epochs_for_steps, make_config
from repro.core import numerics
from repro.core.errors import ReproError
from repro.core.fileio import atomic_write_bytes, git_commit
from repro.core.parallel import limit_threads, map_ordered, process_pool, usable_cores
from repro.data.emoji import TRAIN_CAPTIONS
from repro.design import ARMS
from repro.report.common import print_rows
from repro.report.compare import FINGERPRINT_KEYS
from repro.scoring.stats import BOOTSTRAP_DRAWS, bootstrap_choice
from repro.training.evaluation import validation_item_scores
from repro.training.runjob import data_env, remember_task, task_of
from repro.training.tasks import build_task
from repro.training.trainer import train


#: The defaults sweep of the mini profile, declared before it was run. Every setting is
#: trained with SWEEP_SEEDS; each run is scored by its best English-validation R-sum (the
#: epoch the run itself selects); test data is never read.
SWEEP_SEEDS = (0, 1, 2, 3, 4)
SWEEP_LRS = (3e-4, 1e-3, 3e-3)
#: The choice rule, declared with the grid: per arm, the setting that wins the most bootstrap
#: resamples of seeds and validation items (:func:`repro.scoring.stats.bootstrap_choice`; ties: the
#: first in grid order). Settings that win at least NOISE_SHARE of the resamples are reported
#: as within noise of the choice.
NOISE_SHARE = 0.10
#: Stage 1: the training captions, with PATR and M3 at lr 1e-3.
CAPTION_ARMS = ("PATR", "M3")
#: M3's own hyperparameters: the text-term weight lambda at every learning rate (mu_t 0.5,
#: the method reference's), and the text margin mu_t at lambda 1 on the two lower rates.
M3_LAMBDAS = (0.1, 0.3, 1, 3)
M3_TEXT_MARGINS = (0.25, 1.0)
#: Stage 2, on the chosen captions: each arm's own grid.
ARM_GRIDS = {
    "PATR": [{"lr": lr} for lr in SWEEP_LRS],
    "M3": ([{"lr": lr, "lambda_tt": lam} for lam in M3_LAMBDAS for lr in SWEEP_LRS]
           + [{"lr": lr, "lambda_tt": 1, "margin_tt": m} for m in M3_TEXT_MARGINS
              for lr in SWEEP_LRS[:2]]),
    "PATR text_head=none": [{"lr": lr} for lr in SWEEP_LRS],
    "InfoNCE": [{"lr": lr, "tau": tau} for tau in (0.05, 0.1) for lr in SWEEP_LRS],
    # VSE++: its paper's lr 2e-4 and margin 0.2, and a warm-up on the sum of violations
    # before max violation (a way off the plateau), margin 0.1 with the warm-up.
    "VSE++": ([{"lr": lr, "vsepp_warmup_epochs": w} for w in (0, 5) for lr in (2e-4, 1e-3, 3e-3)]
              + [{"lr": lr, "vsepp_margin": 0.1, "vsepp_warmup_epochs": 5}
                 for lr in (2e-4, 1e-3, 3e-3)]),
}

#: Where the mini sweep's record goes (rows, choice, stability, commit, trainer digest).
RECORD = Path(__file__).resolve().parents[2] / "docs" / "sweeps" / "defaults_mini.json"

#: The trainer's bits in one hash (:func:`trainer_digest`): short runs of fixed configs on the
#: default mini task, seed 0, covering the PATR/M3, InfoNCE and VSE++ (warm-up, then max
#: violation) losses. A change that moves any training bit moves the digest.
#: The task is fixed (names+keywords captions), so that moving a config default moves no digest.
DIGEST_CAPTIONS = "names+keywords"
DIGEST_TASK = (f"train_captions={DIGEST_CAPTIONS}",)
DIGEST_RUNS = (("loss=patr", "lambda_tt=1", "epochs=2"),
               ("loss=infonce", "epochs=2"),
               ("loss=vsepp", "vsepp_warmup_epochs=1", "epochs=2"))


#: A second real text tower's own sweep, on the chosen captions: its output preprocessing
#: (raw features, or centered on the English training mean) crossed with the learning rates,
#: for PATR and M3. The best raw-feature setting of each arm is kept too: the tower table shows
#: both.
TOWER_GRIDS = {"e5": [{"text_preprocess": p, "lr": lr} for p in ("none", "center_en")
                      for lr in SWEEP_LRS]}
TOWER_SWEEP_ARMS = ("PATR", "M3")


def sweep_epochs(task, batch_size: int = 128) -> int:
    """Epochs that give :data:`repro.config.MINI_STEPS` optimizer steps on ``task``'s captions."""
    return epochs_for_steps(task.train_text.item.shape[0], batch_size)


def sweep_job(sets: list[str], seed: int, profile: str, env: dict) -> dict:
    """One sweep run (what a worker runs; picklable arguments): train ``sets`` with ``seed``
    on validation only; its best validation R-sum, plateau escape, seconds, and the best
    epoch's score per validation item (their mean is the R-sum)."""
    cfg = make_config(profile, sets, seed=seed)
    limit_threads(cfg.threads)
    task = task_of(cfg, env)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        model, state = train(cfg, Path(d), task, resume=False)
    return {"best": max(e["val_rsum"] for e in state.log),
            "escape": state.escape_step, "seconds": time.perf_counter() - t0,
            "per_item": validation_item_scores(model, task).round(4).tolist()}


def _sweep_rows(cands: list[tuple[dict, list[str]]], profile: str, pool,
                log_path) -> list[dict]:
    """Every (label fields, settings) of ``cands`` trained with every sweep seed, all
    submitted to ``pool`` at once (``None``: in this process); a row per setting, in order,
    also appended to ``log_path`` as JSON lines."""
    env = data_env()
    jobs = [(sets, seed, profile, env) for _, sets in cands for seed in SWEEP_SEEDS]
    results = iter(map_ordered(pool, sweep_job, jobs))
    rows = []
    for fields, sets in cands:
        runs = [next(results) for _ in SWEEP_SEEDS]
        scores = [r["best"] for r in runs]
        row = {**fields, "settings": " ".join(sets), "val_rsum_mean": float(np.mean(scores)),
               "val_rsum_per_seed": ", ".join(f"{x:.1f}" for x in scores),
               "plateau_escape_steps": ", ".join(str(r["escape"]) if r["escape"] is not None
                                                 else "never" for r in runs),
               "s_per_run": float(np.mean([r["seconds"] for r in runs])),
               "per_item": [r["per_item"] for r in runs]}
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps({k: v for k, v in row.items() if k != "per_item"}), flush=True)
        rows.append(row)
    return rows


def choose(rows: list[dict], arm_key: str = "arm") -> dict:
    """The declared choice rule per arm: each row gets ``win_share``, ``low`` and ``high``
    (:func:`repro.scoring.stats.bootstrap_choice` over the arm's rows) and ``chosen`` ("yes", "within
    noise" or ""); returns arm -> the chosen row."""
    best = {}
    for arm in dict.fromkeys(r[arm_key] for r in rows):
        mine = [r for r in rows if r[arm_key] == arm]
        shares = bootstrap_choice({i: np.asarray(r["per_item"]) for i, r in enumerate(mine)})
        for i, r in enumerate(mine):
            r.update({k: shares[i][k] for k in ("win_share", "low", "high")})
        best[arm] = max(mine, key=lambda r: r["win_share"])  # first of equal shares
        for r in mine:
            r["chosen"] = ("yes" if r is best[arm] else
                           "within noise" if r["win_share"] >= NOISE_SHARE else "")
    return best


@contextlib.contextmanager
def _pool(jobs: int):
    """``jobs`` single-threaded worker processes (1: none, runs in this process)."""
    if jobs == 1:
        yield None
    else:
        with process_pool(jobs) as pool:
            yield pool


def trainer_digest(task=None) -> str:
    """sha256 of the best models and validation logs of the :data:`DIGEST_RUNS` on the
    :data:`DIGEST_TASK` (``task``: that task, already built; one thread; about 5 s)."""
    task = task or build_task(make_config("mini", DIGEST_TASK), with_xtd10=False)
    h = hashlib.sha256()
    for sets in DIGEST_RUNS:
        cfg = make_config("mini", [*DIGEST_TASK, *sets], seed=0)
        with tempfile.TemporaryDirectory() as d:
            model, state = train(cfg, Path(d), task, resume=False)
        for name, tensor in model.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        log = [{k: v for k, v in e.items() if k != "seconds"} for e in state.log]
        h.update(json.dumps(log, sort_keys=True).encode())
    return h.hexdigest()


def numerics_fingerprint() -> dict:
    """What decides the digest's bits on this machine: the keys ``compare`` checks in a
    manifest, but the thread count (the digest's runs compute on one thread by config)."""
    rec = numerics.record()
    return {k: rec.get(k) for k in FINGERPRINT_KEYS if k != "torch_threads"}


def _label(cand: dict) -> str:
    """'lr 3e-4, λ 0.1' for a candidate of :data:`ARM_GRIDS`."""
    names = {"lr": "lr", "lambda_tt": "λ", "margin_tt": "μ_t", "tau": "τ",
             "vsepp_margin": "margin", "vsepp_warmup_epochs": "warm-up epochs",
             "text_preprocess": "preprocess"}
    return ", ".join(f"{names.get(k, k)} {_number(v)}" for k, v in cand.items())


def _number(v) -> str:
    """3e-4 and 1e-3 as written in the grids; other numbers as %g; text as it is."""
    if isinstance(v, bool) or not isinstance(v, float | int):
        return str(v)
    return f"{v:.0e}".replace("e-0", "e-") if 0 < abs(v) < 0.01 else f"{v:g}"


def bench_defaults(out: str = "defaults_sweep.jsonl", jobs: int | None = None,
                   record: Path | None = RECORD) -> dict:
    """The mini defaults sweep: stage 1 picks the training captions (PATR and M3), stage 2
    each arm's own settings on them, each by the declared rule (:func:`choose`). Prints every
    setting's validation score and the choice per arm; appends raw rows to ``out``; writes
    the record (rows, choice, stability, commit, :func:`trainer_digest`) to ``record`` and its
    Markdown table beside it. ``jobs``: worker processes (default: the usable cores)."""
    jobs = jobs or usable_cores()
    tasks = {o: remember_task(make_config("mini", [f"train_captions={o}"]),
                              build_task(make_config("mini", [f"train_captions={o}"])))
             for o in TRAIN_CAPTIONS}
    done: dict = {}  # config (seed 0) -> its row: a setting of both stages trains once
    with _pool(jobs) as pool:
        cands = []
        for option in TRAIN_CAPTIONS:
            epochs = sweep_epochs(tasks[option])
            for arm in CAPTION_ARMS:
                cands.append(({"stage": "1 captions", "arm": arm, "option": option,
                               "setting": f"{option}, {epochs} epochs, lr 1e-3"},
                              list(ARMS[arm].defines) + [f"train_captions={option}", f"epochs={epochs}",
                                               "lr=0.001"]))
        stage1 = _rows_once(cands, pool, out, done)
        options = {o: np.mean([r["per_item"] for r in stage1 if r["option"] == o], axis=0)
                   for o in TRAIN_CAPTIONS}  # mean of PATR's and M3's per-item scores
        captions = bootstrap_choice(options)
        chosen = max(TRAIN_CAPTIONS, key=lambda o: captions[o]["win_share"])
        epochs = sweep_epochs(tasks[chosen])
        cands = [({"stage": "2", "arm": arm, "setting": _label(cand)},
                  list(ARMS[arm].defines) + [f"train_captions={chosen}", f"epochs={epochs}"]
                  + [f"{k}={v}" for k, v in cand.items()])
                 for arm, grid in ARM_GRIDS.items() for cand in grid]
        stage2 = _rows_once(cands, pool, out, done)
    best = choose(stage2)
    for r in stage1:
        r["chosen"] = "yes" if r["option"] == chosen else ""
    result = {"captions": chosen, "epochs": epochs, "caption_shares": captions,
              "arms": {a: r["settings"] for a, r in best.items()},
              "seeds": list(SWEEP_SEEDS), "draws": BOOTSTRAP_DRAWS, "noise_share": NOISE_SHARE,
              "commit": git_commit(RECORD.parent, short=True),
              "trainer_digest": trainer_digest(tasks[DIGEST_CAPTIONS]),
              "numerics": numerics_fingerprint(), "rows": stage1 + stage2}
    print("\n" + record_markdown(result))
    print("chosen per arm: " + json.dumps(result["arms"]))
    if record is not None:
        write_record(result, Path(record))
    return result


def _rows_once(cands, pool, out, done: dict) -> list[dict]:
    """:func:`_sweep_rows` for the candidates not trained yet in this sweep (``done``: seed-0
    config JSON -> row), the others copied from their earlier row."""
    key = lambda sets: make_config("mini", sets, seed=0).to_json()  # noqa: E731
    new = [c for c in dict((key(s), (f, s)) for f, s in cands).values() if key(c[1]) not in done]
    for (_, sets), row in zip(new, _sweep_rows(new, "mini", pool, out)):
        done[key(sets)] = row
    return [{**done[key(sets)], **fields} for fields, sets in cands]


def write_record(result: dict, path: Path) -> None:
    """The sweep's record as JSON (``path``) and its table as Markdown (``.md`` beside it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(result, indent=1, sort_keys=True).encode())
    atomic_write_bytes(path.with_suffix(".md"), record_markdown(result).encode())


def record_markdown(result: dict) -> str:
    """The settings table of a sweep record: every setting's mean validation R-sum with its
    bootstrap interval and win share, per-seed values, plateau escapes, the choice."""
    head = ("| stage | arm | setting | val R-sum, mean (95% bootstrap interval) | wins | per seed "
            "| plateau-escape step per seed | chosen |\n|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in result["rows"]:
        share = f"{100 * r['win_share']:.0f}%" if "win_share" in r else ""
        interval = f" ({r['low']:.1f}–{r['high']:.1f})" if "low" in r else ""
        lines.append(f"| {r['stage']} | {r['arm']} | {r['setting']} | {r['val_rsum_mean']:.1f}"
                     f"{interval} | {share} | {r['val_rsum_per_seed']} | "
                     f"{r['plateau_escape_steps']} | {r.get('chosen', '')} |")
    shares = "; ".join(f"{o} {v['mean']:.1f} (wins {100 * v['win_share']:.0f}%)"
                       for o, v in result["caption_shares"].items())
    return (f"Sweep at commit {result['commit']}, trainer digest "
            f"`{result['trainer_digest'][:16]}`, seeds {', '.join(map(str, result['seeds']))}, "
            f"{result['draws']} bootstrap resamples of seeds and validation items.\n\n"
            f"Stage 1, training captions (mean of PATR and M3): {shares} -> "
            f"**{result['captions']}**.\n\n" + head + "\n".join(lines) + "\n")


def bench_defaults_tower(tower: str, out: str = "defaults_sweep_tower.jsonl",
                         jobs: int | None = None) -> dict:
    """The mini sweep of ``tower`` (:data:`TOWER_GRIDS`): PATR and M3 on the config's default
    captions, each setting with :data:`SWEEP_SEEDS`, chosen by the declared rule
    (:func:`choose`). Returns, per arm, the chosen setting and the chosen one among the raw
    features (``text_preprocess=none``)."""
    if tower not in TOWER_GRIDS:
        raise ReproError(f"--tower {tower}: no sweep declared; expected one of "
                         f"{', '.join(TOWER_GRIDS)}")
    cands = []
    for cand in TOWER_GRIDS[tower]:
        cfg = make_config("mini", [f"text_tower={tower}", f"text_preprocess={cand['text_preprocess']}"])
        task = remember_task(cfg, build_task(cfg))
        for arm in TOWER_SWEEP_ARMS:
            sets = list(ARMS[arm].defines) + [f"text_tower={tower}", f"epochs={sweep_epochs(task)}"]
            cands.append(({"arm": arm, "setting": _label(cand)},
                          sets + [f"{k}={v}" for k, v in cand.items()]))
    with _pool(jobs or usable_cores()) as pool:
        rows = _sweep_rows(cands, "mini", pool, out)
    raw_rows = [dict(r, arm=r["arm"] + " raw") for r in rows if "text_preprocess=none" in r["settings"]]
    best, raw = choose(rows), choose(raw_rows)
    for r in rows:
        if r["chosen"] != "yes" and any(q["settings"] == r["settings"] and q["chosen"] == "yes"
                                        for q in raw_rows):
            r["chosen"] = "raw rows"
    print_rows([{k: v for k, v in r.items() if k != "per_item"} for r in rows])
    print(f"\nchosen per arm ({tower}): " + json.dumps({a: r["settings"] for a, r in best.items()}))
    print(f"raw-feature rows ({tower}): " + json.dumps({a.removesuffix(" raw"): r["settings"]
                                                        for a, r in raw.items()}))
    return {"arms": {a: r["settings"] for a, r in best.items()},
            "raw": {a.removesuffix(" raw"): r["settings"] for a, r in raw.items()}, "rows": rows}


def bench_defaults_paper(sets=(), arms=None, out: str = "defaults_sweep_paper.jsonl",
                         jobs: int = 1) -> dict:
    """The paper profile's defaults sweep, for a user with COCO 2014 (and a GPU): each arm's
    grid of :data:`ARM_GRIDS` (stage 2 of the mini sweep; the caption option is the emoji
    benchmark's only) on COCO's English validation images, seeds :data:`SWEEP_SEEDS`, the
    paper profile's epochs, chosen by the declared rule (:func:`choose`). Only validation
    scores are read. ``arms``: a subset (tests). One job at a time (one GPU) by default."""
    coco = os.environ.get("XLIR_COCO_DIR")
    base = ([f"coco_root={coco}"] if coco else []) + list(sets)
    cfg = make_config("paper", base)
    remember_task(cfg, build_task(cfg))  # a one-line error without COCO
    cands = [({"arm": arm, "setting": _label(cand)},
              list(ARMS[arm].defines) + base + [f"{k}={v}" for k, v in cand.items()])
             for arm in arms or ARM_GRIDS for cand in ARM_GRIDS[arm]]
    with _pool(jobs) as pool:
        rows = _sweep_rows(cands, "paper", pool, out)
    best = choose(rows)
    print_rows([{k: v for k, v in r.items() if k != "per_item"} for r in rows])
    print("\nchosen per arm (paper profile, COCO English validation): "
          + json.dumps({a: r["settings"] for a, r in best.items()}))
    return {"arms": {a: r["settings"] for a, r in best.items()}, "rows": rows}
