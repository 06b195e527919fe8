"""One run of the grid as a job: reused when finished, else trained, resumed or continued.

What a worker process (local, per GPU, or on a Dask cluster) runs: :func:`train_job` takes
picklable arguments only and finds the run's task in its own process (built once from the
feature cache, under the data environment of the process that submitted the job). A job holds
its run folder's lock (:func:`repro.core.locks.folder_writer`) from its first look at the
folder to its last write; a finished run is reused only when every file is the one its
``digests.json`` records.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from repro.config import METRICS_VERSION, config_from_json
from repro.core.errors import ReproError
from repro.core.fileio import (DIGESTS_FILE, atomic_write_bytes, check_digests,
                               verified_bytes)
from repro.core.locks import folder_writer
from repro.core.parallel import limit_threads
from repro.training.results import RunResult
from repro.training.tasks import build_task, task_key
from repro.training.trainer import RUN_FILES, train_and_evaluate


#: Environment variables that locate data and caches: every job carries this process's
#: values, so a worker elsewhere (a Dask cluster on a shared filesystem) finds the same files.
DATA_ENV = ("XLIR_CACHE", "XLIR_XTD10_DIR", "XLIR_COCO_DIR")


def data_env() -> dict:
    """This process's :data:`DATA_ENV` values, as absolute paths."""
    return {k: str(Path(os.environ[k]).resolve()) for k in DATA_ENV if os.environ.get(k)}


#: This process's tasks, by config task key and data environment: the grid's own tasks in
#: the main process; in a worker, the tasks it built (from the feature cache) for its jobs.
PROCESS_TASKS: dict = {}


def process_task_key(cfg, env: dict) -> tuple:
    return task_key(cfg), tuple(sorted(env.items()))


def remember_task(cfg, task):
    """Keep ``task`` as this process's task of ``cfg`` (jobs run here then use it); returns it."""
    PROCESS_TASKS[process_task_key(cfg, data_env())] = task
    return task


def task_of(cfg, env: dict):
    """The task of ``cfg`` in this process, built once from the feature cache under the
    submitting process's data environment ``env``."""
    key = process_task_key(cfg, env)
    if key not in PROCESS_TASKS:
        for k in DATA_ENV:
            if k in env:
                os.environ[k] = env[k]
            else:
                os.environ.pop(k, None)
        PROCESS_TASKS[key] = build_task(cfg)
    return PROCESS_TASKS[key]


def _check_one_job_per_process() -> None:
    """A Dask worker process must run one job at a time (``--nthreads 1``): torch's thread
    count and deterministic mode are per process, so two runs in one process would share
    them."""
    if "distributed" not in sys.modules:
        return
    from distributed import get_worker

    try:
        nthreads = get_worker().state.nthreads
    except ValueError:  # not on a Dask worker
        return
    if nthreads != 1:
        raise ReproError(f"this Dask worker runs {nthreads} tasks at once in one process; "
                         "start the workers with --nthreads 1 (one process per core: "
                         "--nworkers N)")


def train_job(cfg, out: Path, start_from, env: dict) -> tuple[RunResult, str, float]:
    """One run (trained, resumed or continued): (metrics, how, seconds). What a worker runs:
    picklable arguments only; the task comes from this process (:func:`task_of`)."""
    _check_one_job_per_process()
    t0 = time.perf_counter()
    limit_threads(cfg.threads)  # before the task is built (its centering computes)
    metrics, how = reuse_or_train(cfg, out, task_of(cfg, env), train_and_evaluate, start_from)
    return metrics, how, time.perf_counter() - t0


def finished_metrics(cfg, out: Path) -> RunResult | None:
    """The result of a finished run of the same config in ``out`` (of this metrics version),
    else None. Finished: its ``digests.json`` exists (written last), and every file of the
    folder is the one it records, else a one-line error naming the file that changed (never
    reused, never trained over). Without digests the run is unfinished (it is resumed from
    its checkpoint); a ``metrics.json`` that is not a JSON object (cut, edited) is still a
    one-line error naming it, never taken for an unfinished run."""
    sealed = (out / DIGESTS_FILE).is_file()
    if sealed:
        check_digests(out, RUN_FILES)
    metrics = recorded_metrics(cfg, out)
    return metrics if sealed else None


def recorded_metrics(cfg, out: Path) -> RunResult | None:
    """The result in ``out/metrics.json`` when ``out/config.json`` is ``cfg`` and the result is
    of this metrics version, else None; the files are not checked against digests: what a run
    record is read by (a run's folder without its weights or digests,
    :mod:`repro.experiments.records`). A ``metrics.json`` that is not a JSON object (cut,
    edited) is a one-line error naming it (:meth:`RunResult.read_values`)."""
    metrics_path, cfg_path = out / "metrics.json", out / "config.json"
    if metrics_path.is_file() and cfg_path.is_file() and same_config(cfg_path, cfg):
        values = RunResult.read_values(metrics_path)
        if values.get("metrics_version") == METRICS_VERSION:
            return RunResult.from_dict(values, str(metrics_path))
    return None


def reuse_or_train(cfg, out: Path, task, train_fn,
                   start_from: Path | None = None) -> tuple[RunResult, str]:
    """Reuse a finished run of the same config, else train (resuming its checkpoint, or
    continuing the finished shorter run ``start_from`` of the same arm and seed, from the
    bytes of its checkpoint that its digests record). Holds ``out``'s lock throughout."""
    with folder_writer(out):
        metrics = finished_metrics(cfg, out)
        if metrics is not None:
            return metrics, "reused"
        how = "trained"
        if start_from is not None and not (out / "checkpoint.pt").exists():
            atomic_write_bytes(out / "checkpoint.pt", verified_bytes(start_from, "checkpoint.pt"))
            how = f"continued from {start_from.parent.name}"
        train_fn(cfg, out, resume=True, task=task)
        return RunResult.read(out / "metrics.json"), how


def same_config(path: Path, cfg) -> bool:
    """Is the run's saved config ``cfg`` (keys added later read as their defaults)?"""
    try:
        return config_from_json(path.read_text()) == cfg
    except (ReproError, TypeError, ValueError):
        return False
