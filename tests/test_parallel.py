"""Where the work runs (repro.core.parallel): cores, thread limits, executors and the grid's plan."""

import os
import time
from pathlib import Path

import numpy as np
import pytest

from repro.core import parallel
from repro.core.errors import ReproError


def test_a_process_pinned_to_one_core_runs_one_job():
    """``taskset -c N python -m repro reproduce`` (or a batch slot of one core) gets one job,
    run here without worker processes, whatever the machine's core count; unpinned, one job
    per core the process may use."""
    import subprocess
    import sys

    script = ("import os, sys; from repro.core import parallel\n"
              "if len(sys.argv) > 1: os.sched_setaffinity(0, {int(sys.argv[1])})\n"
              "jobs = parallel.default_jobs('mini'); print(jobs, *parallel.work_plan('mini', jobs))")

    def plan(*pin):
        out = subprocess.run([sys.executable, "-c", script, *map(str, pin)], capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parents[1])
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    allowed = sorted(os.sched_getaffinity(0))
    assert plan(allowed[-1]) == ["1", "inline", "1"]
    n = str(len(allowed))
    assert plan() == ([n, "processes", n] if len(allowed) > 1 else ["1", "inline", "1"])


@pytest.mark.parametrize("spec", ["local", "dask://127.0.0.1:8786", "dask://scheduler.lan:1"])
def test_executor_specs_accepted(spec):
    assert parallel.check_executor(spec) == spec


@pytest.mark.parametrize("spec", ["", "dask", "dask://host", "dask://:8786", "ray://h:1",
                                  "dask://h:port"])
def test_bad_executor_is_a_one_line_error(spec):
    with pytest.raises(ReproError, match="--executor .*expected local or dask://HOST:PORT"):
        parallel.check_executor(spec)


def test_the_mini_plan_is_one_process_per_job():
    assert parallel.work_plan("mini", 1) == ("inline", 1)
    assert parallel.work_plan("mini", 3) == ("processes", 3)
    assert parallel.work_plan("mini", 3, "dask://h:1") == ("dask", 0)
    assert parallel.default_jobs("mini") == parallel.usable_cores()


def test_the_paper_plan_is_one_worker_per_gpu():
    gpus = ["0", "1", "2"]
    assert parallel.default_jobs("paper", gpus) == 3
    assert parallel.work_plan("paper", 3, devices=gpus) == ("gpus", 3)
    assert parallel.work_plan("paper", 2, devices=gpus) == ("gpus", 2)
    assert parallel.work_plan("paper", 8, devices=["0"]) == ("inline", 1)  # one GPU: here
    assert parallel.work_plan("paper", 4, devices=[]) == ("inline", 1)     # CPU: all cores
    assert parallel.default_jobs("paper", []) == 1


def test_cuda_devices_follow_cuda_visible_devices():
    assert parallel.cuda_devices({"CUDA_VISIBLE_DEVICES": "2, 5"}) == ["2", "5"]
    assert parallel.cuda_devices({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert parallel.cuda_devices({"CUDA_VISIBLE_DEVICES": "-1"}) == []


def _visible_device_of_this_worker(delay: float):
    time.sleep(delay)  # long enough that every worker of the pool takes a job
    return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES")


def test_each_gpu_worker_sees_its_own_device():
    """A fake device list: every worker process gets exactly one id, no two the same."""
    with parallel.gpu_pool(["3", "7"]) as pool:
        seen = [f.result() for f in [pool.submit(_visible_device_of_this_worker, 0.5)
                                     for _ in range(6)]]
    by_pid = {}
    for pid, dev in seen:
        by_pid.setdefault(pid, set()).add(dev)
    assert all(len(devs) == 1 for devs in by_pid.values())
    assert sorted(d for devs in by_pid.values() for d in devs) == ["3", "7"]


def _threads_here():
    import torch
    from threadpoolctl import threadpool_info

    return torch.get_num_threads(), sorted({p["num_threads"] for p in threadpool_info()})


def test_workers_compute_on_one_thread():
    with parallel.process_pool(2) as pool:
        torch_threads, pool_threads = pool.submit(_threads_here).result()
    assert torch_threads == 1 and pool_threads == [1]


def test_one_thread_is_restored_after_the_block():
    import torch

    before = torch.get_num_threads()
    with parallel.one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def _square_or_fail(x):
    if x < 0:
        raise ValueError(f"negative {x}")
    return np.float32(x) ** 2


def test_map_ordered_same_results_inline_and_in_workers():
    args = [(float(i),) for i in range(7)]
    inline = parallel.map_ordered(None, _square_or_fail, args)
    with parallel.process_pool(2) as pool:
        assert parallel.map_ordered(pool, _square_or_fail, args) == inline
    assert inline == [np.float32(i) ** 2 for i in range(7)]


def test_inline_executor_raises_at_result():
    future = parallel.InlineExecutor().submit(_square_or_fail, -1.0)
    with pytest.raises(ValueError, match="negative"):
        future.result()
    assert parallel.InlineExecutor().submit(_square_or_fail, 3.0).result() == 9.0


def test_dask_executor_without_a_scheduler_is_a_one_line_error():
    pytest.importorskip("distributed")
    with pytest.raises(ReproError, match="no Dask scheduler answers at tcp://127.0.0.1:9"):
        with parallel.dask_executor("dask://127.0.0.1:9", timeout="2s"):
            pass


def _ctrl_c_blocked() -> bool:
    import signal

    return signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_workers_take_no_ctrl_c():
    """A terminal's Ctrl-C goes to every process of the command: the workers are started
    with it blocked (from their first instruction, so none prints a traceback while it is
    still importing), and the main process stops them (terminate_workers)."""
    with parallel.process_pool(1) as pool:
        assert pool.submit(_ctrl_c_blocked).result()
    with parallel.gpu_pool(["0"]) as pool:
        assert pool.submit(_ctrl_c_blocked).result()
    assert not _ctrl_c_blocked()  # the main process takes it


def test_ctrl_c_stops_the_workers_at_once():
    """Ctrl-C while runs are in the workers: the pool's processes are stopped, not waited for
    (a run cut short keeps its last checkpoint), so the command ends in seconds."""
    def exists(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    pool = parallel.process_pool(2)
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            with parallel.run_executor(("processes", 2), "local", pool) as ex:
                jobs = [ex.submit(time.sleep, 120) for _ in range(2)]
                while not all(j.running() for j in jobs):
                    time.sleep(0.05)
                pids = list(pool._processes)
                raise KeyboardInterrupt
        # gone (reaped by the pool's own thread or by terminate_workers' join: whichever
        # comes first; the other's Process object then cannot tell, so ask the system)
        deadline = time.monotonic() + 10
        while any(exists(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(pids) == 2 and not any(exists(pid) for pid in pids)
    finally:
        pool.shutdown(cancel_futures=True)
    assert time.monotonic() - started < 60  # waiting would take 120 s
