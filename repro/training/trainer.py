"""Deterministic training and evaluation of one arm (one config, one seed).

* One seed fixes everything: ``random``, ``numpy`` and ``torch`` are seeded, deterministic
  algorithms are on, the thread count is fixed (one in the mini profile), and each epoch draws its shuffling and random
  negatives from a ``torch.Generator`` seeded by (seed, epoch), so a resumed run ends bitwise
  equal to an uninterrupted one. Not guaranteed: other thread counts, CPUs or GPUs.
* A checkpoint (model, optimizer, training state) is written atomically after the last epoch
  and, during training, every ``CHECKPOINT_EPOCHS`` epochs and whenever ``CHECKPOINT_SECONDS``
  have passed since the previous one. Resuming from any checkpoint ends bitwise equal
  to an uninterrupted run. The epoch kept is the best on the English validation split (R-sum);
  non-English text never reaches training or selection.
* Where a run stands is a :class:`TrainState` (saved in the checkpoint as a plain dict);
  tests and benchmarks that cut a run or its epochs short pass :class:`Hooks`.
* The run folder holds ``config.json``, ``checkpoint.pt``, ``log.jsonl``, ``best_model.pt``,
  ``metrics.json``, ``test_ranks.json`` and ``provenance.json``, and, written last when the
  run ends, ``digests.json``: the sha256 of each (:data:`RUN_FILES`). A finished run's
  ``best_model.pt`` and ``checkpoint.pt`` are read only as the bytes it records.
* One writer per run folder: :func:`train`, :func:`train_and_evaluate` and
  :func:`evaluate_run` hold the folder's lock (:func:`repro.core.locks.folder_writer`)
  while they run; a second writer gets a one-line error naming the holder.
"""

from __future__ import annotations

import dataclasses
import io
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from repro.config import PLATEAU_GAP, PLATEAU_WINDOW, Config, config_from_json
from repro.core.device import resolve_device
from repro.core.errors import ReproError, reason
from repro.core.fileio import (DIGESTS_FILE, atomic_write_bytes, forget_digests, git_commit,
                               record_digest, verified_bytes, write_digests)
from repro.core.locks import folder_writer
from repro.core.parallel import limit_threads
from repro.model.encoder import DualEncoder
from repro.model.losses import LOSSES, compute_loss
from repro.training.evaluation import (RANKS_FILE, device_of, evaluate, ranks_bytes, test_ranks,
                                       text_diagnostics, validate)
from repro.training.results import RunResult
from repro.training.state import TrainState
from repro.training.tasks import Task, assert_english, build_task

#: A mid-run checkpoint at least every CHECKPOINT_EPOCHS epochs and whenever CHECKPOINT_SECONDS
#: have passed since the previous one; one is always written at the end. (A mini checkpoint
#: holds the heads, the best epoch's heads and the Adam state, 23 MB; writing one takes about
#: 55 ms on an AMD EPYC, so every 10 of 113 epochs adds about 0.6 s to a 33 s run.) Where
#: checkpoints fall changes no result; a test that wants one after every epoch sets
#: CHECKPOINT_SECONDS to 0 (monkeypatch), read when each epoch ends.
CHECKPOINT_EPOCHS = 10
CHECKPOINT_SECONDS = 60.0


@dataclass(frozen=True)
class Hooks:
    """Where a test or benchmark cuts training short; real runs pass none. A stop changes no
    bit of what does run: a run stopped after epoch k writes the checkpoint and log that
    epoch k of the full run would have left (a crash after it), and an epoch stopped after b
    batches runs exactly the full epoch's first b batches.

    * ``stop_after_epochs``: :func:`train` ends once this many epochs are done (checkpointed).
    * ``stop_after_batches``: each epoch (:func:`train_epoch`) ends after this many batches.
    """

    stop_after_epochs: int | None = None
    stop_after_batches: int | None = None

    def stops_after(self, epoch: int) -> bool:
        """Does the run end once ``epoch`` epochs are done?"""
        return self.stop_after_epochs is not None and epoch >= self.stop_after_epochs


NO_HOOKS = Hooks()


def deterministic_algorithms() -> None:
    """torch's deterministic-algorithms switch, without the compiler import.

    ``torch.use_deterministic_algorithms`` also imports torch's compiler (about 2 s of every
    process) only to set the same flag for compiled code; nothing here is compiled, so the
    switch itself is set when torch has it."""
    switch = getattr(torch._C, "_set_deterministic_algorithms", None)
    if switch is None:
        torch.use_deterministic_algorithms(True)
    else:
        switch(True, warn_only=False)


def seed_everything(cfg: Config) -> torch.device:
    """Seed everything, make algorithms deterministic; returns the device runs use."""
    # deterministic cuBLAS needs a fixed workspace, read when cuBLAS first starts: ``import
    # repro`` sets CUBLAS_WORKSPACE_CONFIG before any module can touch CUDA (repro/core/numerics.py)
    device = resolve_device(cfg.device)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    deterministic_algorithms()
    limit_threads(cfg.threads)  # torch, BLAS (the evaluator's numpy) and OpenMP alike
    return device


def make_optimizer(model, cfg: Config) -> torch.optim.Optimizer:
    """AdamW, fused: one kernel for all parameters (on the CPU about 3x faster than the
    per-tensor loop) and deterministic, no atomics (same bits run to run, tested)."""
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                             fused=True)


#: An epoch's batches and negatives come from seed x EPOCH_SEED_STRIDE + epoch.
EPOCH_SEED_STRIDE = 1_000_003


def epoch_generator(cfg: Config, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(cfg.seed * EPOCH_SEED_STRIDE + epoch)


def epoch_batches(task: Task, cfg: Config, gen: torch.Generator) -> list[torch.Tensor]:
    """Caption indices of each batch of one epoch (drop-last, seeded).

    With ``sample_per_image`` an epoch visits each training image once, paired with one of
    its captions drawn at random; otherwise it visits every caption once.
    """
    item = torch.from_numpy(task.train_text.item)
    if cfg.sample_per_image:
        n_img = task.train_images.shape[0]
        order = torch.argsort(item, stable=True)
        counts = torch.bincount(item, minlength=n_img)
        starts = torch.cumsum(counts, 0) - counts
        pick = (torch.rand(n_img, generator=gen) * counts).long()
        captions = order[starts + pick][torch.randperm(n_img, generator=gen)]
    else:
        captions = torch.randperm(item.shape[0], generator=gen)
    n = (captions.shape[0] // cfg.batch_size) * cfg.batch_size
    return list(captions[:n].split(cfg.batch_size))


def _state_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@dataclass
class TrainData:
    """The training set where the model lives: caption features (n, text_dim), the item of
    each caption (n,) int64, image features (n_images, feat_dim), and the text id of each
    caption (n,) int64 for the false-negative mask (None: no text mask, Table 2d's 'v1' protocol). On
    the CPU these are the task's own tensors (no copy); on a GPU they are moved there once."""

    feats: torch.Tensor
    item: torch.Tensor
    images: torch.Tensor
    text_id: torch.Tensor | None = None

    @classmethod
    def of(cls, task: Task, device: torch.device, mask_same_text: bool = True) -> "TrainData":
        tid = task.train_text.text_id
        return cls(task.train_text.feats.to(device),
                   torch.from_numpy(task.train_text.item).to(device),
                   task.train_images.to(device),
                   torch.from_numpy(tid).to(device) if mask_same_text and tid is not None else None)


def diverged(cfg: Config, epoch: int, batch: int, n_batches: int, loss: float) -> str:
    """The one-line error of a run whose loss is not finite: where, and the settings."""
    keys = ("lr", "weight_decay", *LOSSES[cfg.loss].keys)
    settings = ", ".join(f"{k}={getattr(cfg, k)}" for k in keys)
    return (f"training diverged: loss {loss} at epoch {epoch}, batch {batch} of {n_batches} "
            f"({cfg.arm}, loss={cfg.loss}, {settings}, seed {cfg.seed}); no metrics written")


def train_epoch(model, opt, task: Task, cfg: Config, epoch: int,
                data: TrainData | None = None,
                hooks: Hooks = NO_HOOKS) -> tuple[dict, np.ndarray]:
    """One epoch of optimizer steps. Returns (epoch means of loss, cos_pos, cos_neg, win;
    the per-batch gap cos(t, v+) - cos(t, hardest v-) as float64 (n_batches,)).

    Batches are drawn on the CPU (seeded), indices moved to the model's device; diagnostics
    stay there until the epoch ends (one transfer per epoch). ``hooks`` may end the epoch
    early (benchmarks).
    """
    gen = epoch_generator(cfg, epoch)
    model.train()
    data = data or TrainData.of(task, device_of(model), cfg.mask_same_text)
    batches = epoch_batches(task, cfg, gen)[:hooks.stop_after_batches]
    rows = []
    for b, caps in enumerate(batches):
        caps = caps.to(data.feats.device)
        item = data.item[caps]
        tid = data.text_id[caps] if data.text_id is not None else None
        t = model.encode_text(data.feats[caps])
        v = model.encode_image(data.images[item])
        loss, diag = compute_loss(cfg, t, v, item, tid, gen, epoch)
        if not torch.isfinite(loss):
            raise ReproError(diverged(cfg, epoch, b + 1, len(batches), float(loss.detach())))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        rows.append(torch.stack([loss.detach(), diag["cos_pos"], diag["cos_neg"], diag["win"]]))
    if not rows:
        return {"loss": 0.0, "cos_pos": 0.0, "cos_neg": 0.0, "win": 0.0}, np.zeros(0)
    per_batch = torch.stack(rows).double().cpu().numpy()
    means = per_batch.mean(axis=0)
    stats = dict(zip(("loss", "cos_pos", "cos_neg", "win"), map(float, means)))
    return stats, per_batch[:, 1] - per_batch[:, 2]


def update_plateau(state: TrainState, gaps: np.ndarray) -> dict:
    """Track the plateau over optimizer steps (rule: :data:`PLATEAU_GAP`, :data:`PLATEAU_WINDOW`):
    advance ``state``'s ``step``, ``recent`` and ``escape_step`` over this epoch's batch
    ``gaps``. Returns this epoch's plateau fields for the log.
    """
    recent = list(state.recent)
    step, escape = state.step, state.escape_step
    for g in gaps:
        step += 1
        recent = (recent + [float(g)])[-PLATEAU_WINDOW:]
        off = len(recent) == PLATEAU_WINDOW and float(np.mean(recent)) >= PLATEAU_GAP
        if off and escape is None:
            escape = step
        elif not off and len(recent) == PLATEAU_WINDOW:
            escape = None  # back on the plateau: a later escape counts
    state.step, state.recent, state.escape_step = step, recent, escape
    return {"step": step, "on_plateau": escape is None, "escape_step": escape}


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total, desc):
    """An epoch bar on a terminal; off one nothing (not even a disabled tqdm: that creates a
    process lock, which a worker stopped by Ctrl-C would leave behind)."""
    if not sys.stderr.isatty():
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False)


def train(cfg: Config, out: Path, task: Task | None = None, resume: bool = True,
          epoch_lines: bool = False, hooks: Hooks = NO_HOOKS) -> tuple[DualEncoder, TrainState]:
    """Train (or resume) one arm into ``out``, holding its lock; returns (best model, training
    state).

    A checkpoint is written after the last epoch, every :data:`CHECKPOINT_EPOCHS` epochs and
    whenever :data:`CHECKPOINT_SECONDS` have passed since the previous one. ``hooks`` (tests
    and benchmarks) may end the run or its epochs early; none changes any result. The
    folder's ``digests.json`` is deleted before its first write: from then on it is unfinished
    until :func:`train_and_evaluate` writes its digests again.
    """
    with folder_writer(out):
        return _train(cfg, out, task, resume, epoch_lines, hooks)


def _train(cfg: Config, out: Path, task: Task | None, resume: bool, epoch_lines: bool,
           hooks: Hooks) -> tuple[DualEncoder, TrainState]:
    device = seed_everything(cfg)
    task = task or build_task(cfg)
    assert_english(task.train_text, "training")
    model = DualEncoder(cfg, task.text_dim, task.image_feat_dim).to(device)
    data = TrainData.of(task, device, cfg.mask_same_text)
    opt = make_optimizer(model, cfg)
    ckpt_path = out / "checkpoint.pt"
    state = TrainState()
    if resume and ckpt_path.exists():
        saved = load_checkpoint(ckpt_path)
        state = TrainState.from_dict(saved["state"])
        if not can_continue(saved["config"], state.epoch, cfg):
            raise ReproError(f"{ckpt_path}: checkpoint of another config; use --fresh or "
                             "another --out")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        if state.epoch < cfg.epochs:
            print(f"{out}: resuming from the checkpoint of epoch {state.epoch} of "
                  f"{cfg.epochs}", file=sys.stderr)
        else:
            print(f"{out}: its checkpoint is of the last epoch ({cfg.epochs}); evaluating it",
                  file=sys.stderr)
    forget_digests(out)
    atomic_write_bytes(out / "config.json", cfg.to_json().encode())
    # The log restarts from the checkpoint: epochs run after it (before a crash) are redone.
    _write_log(out / "log.jsonl", state.log)
    bar = _progress(cfg.epochs, cfg.arm)
    bar.update(state.epoch)
    t_saved = time.perf_counter()
    while state.epoch < cfg.epochs and not hooks.stops_after(state.epoch):
        t0 = time.perf_counter()
        epoch = state.epoch + 1
        stats, gaps = train_epoch(model, opt, task, cfg, epoch, data, hooks)
        stats.update(update_plateau(state, gaps))
        val = validate(model, task)
        stats.update(text_diagnostics(model, task.val_groups))
        stats.update(epoch=epoch, val_rsum=val["rsum"], val_t2i_R1=val["t2i_R@1"],
                     seconds=round(time.perf_counter() - t0, 3))
        state.log.append(stats)
        if val["rsum"] > state.best_score:
            state.best_epoch, state.best_score = epoch, val["rsum"]
            state.best_model = _cpu_state(model)
        state.epoch = epoch
        last = epoch == cfg.epochs or hooks.stops_after(epoch)
        if (last or epoch % CHECKPOINT_EPOCHS == 0
                or time.perf_counter() - t_saved >= CHECKPOINT_SECONDS):
            atomic_write_bytes(ckpt_path, _state_bytes({
                "config": cfg.to_json(), "model": _cpu_state(model),
                "optimizer": opt.state_dict(), "state": state.to_dict()}))
            t_saved = time.perf_counter()
        _write_log(out / "log.jsonl", state.log)
        bar.update(1)
        if epoch_lines:
            print(epoch_line(cfg.arm, epoch, cfg.epochs, stats["loss"], val["rsum"],
                             state.best_epoch, state.best_score), file=sys.stderr, flush=True)
    bar.close()
    best = DualEncoder(cfg, task.text_dim, task.image_feat_dim).to(device)
    best.load_state_dict(state.best_model or model.state_dict())
    return best, state


def epoch_line(arm: str, epoch: int, epochs: int, loss: float, rsum: float, best_epoch: int,
               best_rsum: float) -> str:
    """The progress line of one epoch: its loss and the metric that picks the evaluated
    model, English validation R-sum (the sum of R@1, R@5 and R@10 both ways, in points), and
    the best epoch by it so far."""
    return (f"{arm} epoch {epoch}/{epochs}: loss {loss:.4f}, English validation R-sum "
            f"{rsum:.1f} (best by R-sum so far: epoch {best_epoch}, {best_rsum:.1f})")


def load_checkpoint(path: Path) -> dict:
    """A run's ``checkpoint.pt`` (on the CPU), or a one-line error when it cannot be read. In a
    folder with a ``digests.json`` (a finished run) only the bytes it records are read; an
    unfinished run has none yet."""
    data = (verified_bytes(path.parent, path.name) if (path.parent / DIGESTS_FILE).is_file()
            else path.read_bytes())
    try:
        saved = torch.load(io.BytesIO(data), weights_only=False, map_location="cpu")
        if not isinstance(saved, dict) or not {"config", "model", "state"} <= set(saved):
            raise ValueError("not a checkpoint of this package")
        return saved
    except Exception as exc:  # unpickling errors come in many types
        raise ReproError(f"{path}: unreadable checkpoint ({type(exc).__name__}); delete it or "
                         "rerun with --fresh") from None


def load_best_model(run: Path) -> dict:
    """The parameters in a finished run's ``best_model.pt`` (on the CPU), read only as the
    bytes its ``digests.json`` records; a one-line error naming the file otherwise."""
    path = Path(run) / "best_model.pt"
    data = verified_bytes(path.parent, path.name)
    try:
        return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # unpickling errors come in many types
        raise ReproError(f"{path}: unreadable ({reason(exc)})") from None


def _cpu_state(model) -> dict:
    """A copy of the model's parameters on the CPU (checkpoints load on any machine)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def can_continue(saved_config: str, saved_epoch: int, cfg: Config) -> bool:
    """May a checkpoint of ``saved_config`` at ``saved_epoch`` be resumed as ``cfg``? Yes when
    the configs are equal, or differ only in ``epochs`` and the checkpoint is not past
    ``cfg.epochs``: epochs are seeded by (seed, epoch) and nothing depends on the total, so a
    finished 30-epoch run continued to 60 equals a 60-epoch run bit for bit (tested)."""
    if saved_config == cfg.to_json():
        return True
    old = json.loads(config_from_json(saved_config).to_json())  # later keys: their defaults
    new = json.loads(cfg.to_json())
    old.pop("epochs", None)
    new.pop("epochs", None)
    return old == new and saved_epoch <= cfg.epochs


def _log_line(stats: dict) -> bytes:
    return json.dumps({k: (round(v, 6) if isinstance(v, float) else v)
                       for k, v in stats.items()}).encode() + b"\n"


def _write_log(path: Path, log: list[dict]) -> None:
    """Write the JSON-lines log of every epoch so far (atomic: never half a line)."""
    atomic_write_bytes(path, b"".join(_log_line(e) for e in log))


#: Where a run was made (commit, CPU) and what it cost (seconds): beside ``metrics.json``,
#: never inside it, so that the metrics stay bit-reproducible.
PROVENANCE_FILE = "provenance.json"
#: The files of a finished run, each recorded in its ``digests.json`` (written after them).
RUN_FILES = ("config.json", "log.jsonl", "checkpoint.pt", "best_model.pt", RANKS_FILE,
             "metrics.json", PROVENANCE_FILE)


def train_and_evaluate(cfg: Config, out: Path, resume: bool = True,
                       task: Task | None = None, epoch_lines: bool = False) -> RunResult:
    """Train one arm, evaluate its selected epoch, write ``out/metrics.json`` (and its
    timings, commit and CPU apart, in ``provenance.json``, so that metrics.json is
    bit-reproducible) and the per-query test ranks (``test_ranks.json``); then, last, the
    sha256 of every file of :data:`RUN_FILES` (``digests.json``). Holds the folder's lock.
    ``epoch_lines``: one line per epoch on stderr (progress off a terminal)."""
    with folder_writer(out):
        return _train_and_evaluate(cfg, out, resume, task, epoch_lines)


def _train_and_evaluate(cfg: Config, out: Path, resume: bool, task: Task | None,
                        epoch_lines: bool) -> RunResult:
    t0 = time.perf_counter()
    task = task or build_task(cfg)
    model, state = train(cfg, out, task, resume, epoch_lines=epoch_lines)
    result = evaluate(model, task, cfg, state)
    atomic_write_bytes(out / "best_model.pt", _state_bytes(model.state_dict()))
    atomic_write_bytes(out / RANKS_FILE, ranks_bytes(test_ranks(model, task)))
    result.write(out / "metrics.json")
    provenance = {"commit": git_commit(), "cpu_model": result.numerics.get("cpu_model"),
                  "train_seconds": round(sum(e["seconds"] for e in state.log), 3),
                  "wall_seconds_this_call": round(time.perf_counter() - t0, 3)}
    atomic_write_bytes(out / PROVENANCE_FILE, json.dumps(provenance, indent=1).encode())
    write_digests(out, RUN_FILES)
    return result


def evaluate_run(out: Path, log=print, write: bool = False) -> RunResult:
    """Recompute the metrics of a finished run from its ``best_model.pt`` (the weights search,
    tag and export use; its training state from ``checkpoint.pt``), both read only as the
    bytes its ``digests.json`` records, and say whether they equal the ``metrics.json`` the
    run wrote, naming the values that differ. ``metrics.json`` is written only with ``write``
    (or when the run has none), and its new sha256 recorded. Holds the folder's lock."""
    missing = [n for n in ("config.json", "checkpoint.pt", "best_model.pt", DIGESTS_FILE)
               if not (out / n).is_file()]
    if missing:
        raise ReproError(f"{out}: not a finished run folder (no {missing[0]}); the train "
                         "command that made it finishes it")
    with folder_writer(out):
        return _evaluate_run(out, log, write)


def _evaluate_run(out: Path, log, write: bool) -> RunResult:
    cfg_path = out / "config.json"
    data = verified_bytes(out, cfg_path.name)
    try:
        cfg = config_from_json(data.decode("utf-8"))
    except (ReproError, ValueError, TypeError) as exc:
        raise ReproError(f"{cfg_path}: not a config this version can run ({exc})") from None
    state = TrainState.from_dict(load_checkpoint(out / "checkpoint.pt")["state"])
    weights = load_best_model(out)
    device = seed_everything(cfg)
    task = build_task(cfg)
    model = DualEncoder(cfg, task.text_dim, task.image_feat_dim).to(device)
    model.load_state_dict(weights)
    result = evaluate(model, task, cfg, state)
    metrics_path = out / "metrics.json"
    before = metrics_path.read_bytes() if metrics_path.is_file() else None
    if before is None or write:
        result.write(metrics_path)
        record_digest(out, metrics_path.name)
    if before is None:
        log(f"{metrics_path}: written")
    elif result.to_json() == before:
        log(f"{metrics_path}: recomputed, byte-identical to the saved file")
    else:
        changed = _changed_values(RunResult.read_bytes(before, metrics_path), result)
        log(f"{metrics_path}: recomputed, differs from the saved file in {changed} (other data, "
            "settings or machine); " + ("written" if write else "kept (--write replaces it)"))
    return result


def _changed_values(old: RunResult, new: RunResult, show: int = 4) -> str:
    """'t2i_R@1_de 13.4 -> 12.8, ... (7 values)': the summary values that differ, else the
    sections."""
    diff = [f"{k} {old.summary.get(k)} -> {v}" for k, v in new.summary.items()
            if old.summary.get(k) != v]
    if not diff:
        diff = [f.name for f in dataclasses.fields(RunResult)
                if getattr(old, f.name) != getattr(new, f.name)]
    more = f", ... ({len(diff)} values)" if len(diff) > show else ""
    return ", ".join(diff[:show]) + more
