"""One writer at a time (repro.core.locks): a second writer of a run folder, in a real second
process, fails at once with one line naming the folder and the holder; a second process that
misses the same feature-cache entry waits for the first and reads what it wrote; the OS lets go
of the lock of a process that dies."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import hold_folder_lock
from repro.core.errors import ReproError
from repro.core.locks import LOCK_FILE, folder_writer

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT))


def test_a_second_train_into_a_run_folder_being_written_fails_at_once(tmp_path, mini_features):
    """``train --out SAME`` while another process writes SAME: one line naming the folder and
    the holder's pid, exit 2, nothing written; once the holder is killed (a crash), the OS has
    let go of its lock and the folder can be written again."""
    out = tmp_path / "run"
    holder = hold_folder_lock(out)
    try:
        res = subprocess.run([sys.executable, "-m", "repro", "train", "--out", str(out), "--set",
                              "epochs=1", "--set", "batch_size=256"], cwd=ROOT, env=_env(),
                             capture_output=True, text=True, timeout=120)
        assert sorted(os.listdir(out)) == [LOCK_FILE]  # nothing trained, nothing written
    finally:
        holder.kill()
        holder.wait()
    assert res.returncode == 2, res.stderr[-2000:]
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and res.stderr.splitlines()[-1] == errors[0], res.stderr
    assert "Traceback" not in res.stderr
    assert errors[0].startswith(f"error: --out {out}: being written by another process (pid "
                                f"{holder.pid} on "), errors[0]
    assert "folder_writer" in errors[0]  # the holder's command line
    with folder_writer(out):  # the killed holder's lock is gone; its lock file is taken over
        pass
    assert not (out / LOCK_FILE).exists()


def test_a_lock_is_taken_again_by_its_thread_and_refused_to_another(tmp_path):
    """train_and_evaluate takes its folder's lock and calls train, which takes it too; another
    thread of the same process is a second writer."""
    folder = tmp_path / "f"
    refused = []

    def second_writer():
        try:
            with folder_writer(folder):
                pass
        except ReproError as exc:
            refused.append(str(exc))

    with folder_writer(folder):
        with folder_writer(folder):
            assert (folder / LOCK_FILE).is_file()
        thread = threading.Thread(target=second_writer)
        thread.start()
        thread.join()
        assert (folder / LOCK_FILE).is_file()  # still held by the outer body
    assert len(refused) == 1 and f"being written by another process (pid {os.getpid()} on " \
        in refused[0]
    assert not (folder / LOCK_FILE).exists()  # let go: its lock file deleted
    with pytest.raises(RuntimeError):
        with folder_writer(folder):
            raise RuntimeError("a crash inside")
    second_writer()
    assert len(refused) == 1  # free again after the exception


_CACHE_USER = """
import os, sys, time
from pathlib import Path
import numpy as np
from repro.towers import cache

root = Path(sys.argv[1])

def compute(items):
    with open(root.parent / "computed_by", "a") as f:
        f.write(f"{os.getpid()}\\n")
    (root.parent / "started").touch()
    deadline = time.monotonic() + 120
    while not (root.parent / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return np.arange(3 * len(items), dtype=np.float32).reshape(len(items), 3)

arr = cache.cached("k", {"tower": "t"}, ["a", "b", "c"], compute, root,
                   log=lambda line: print(line, flush=True))
print("sum", float(arr.sum()), flush=True)
"""


def _wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_a_feature_cache_entry_is_computed_by_one_process_while_another_waits(tmp_path):
    """Two processes miss the same entry: the second waits for the first (saying whom it
    waits for), then reads the entry it wrote; the features are computed once."""
    root = tmp_path / "features"
    argv = [sys.executable, "-c", _CACHE_USER, str(root)]
    first = subprocess.Popen(argv, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, text=True)
    second = None
    try:
        _wait_for(tmp_path / "started")  # the first computes, holding the entry's lock
        second = subprocess.Popen(argv, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                  text=True)
        said = []
        while not any("waiting for it" in line for line in said):
            line = second.stdout.readline()
            assert line, f"the second process ended without waiting: {said}"
            said.append(line.strip())
        (tmp_path / "release").touch()
        out_first, _ = first.communicate(timeout=120)
        out_second, _ = second.communicate(timeout=120)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert first.returncode == 0 and second.returncode == 0
    assert (tmp_path / "computed_by").read_text().split() == [str(first.pid)]
    (entry,) = root.glob("k-*.npy")
    assert said[-1].startswith(f"feature cache {entry}: being computed by another process (pid "
                               f"{first.pid} on "), said[-1]
    assert said[-1].endswith("); waiting for it")
    assert out_first.splitlines()[-1] == "sum 36.0" and out_second.strip() == "sum 36.0"
    assert not list(root.glob(".*.lock"))  # let go: the lock files are deleted


def test_reproduce_fresh_empties_a_run_folder_only_when_no_one_writes_it(tmp_path):
    """``reproduce --fresh`` deletes a run folder's files holding its lock: refused, naming
    the holder, while another process writes it; afterwards the folder is empty."""
    from repro.experiments.reproduce import _empty_run_folder

    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    (run / "metrics.json").write_text("{}")
    holder = hold_folder_lock(run)
    try:
        with pytest.raises(ReproError, match=f"being written by another process \\(pid "
                                             f"{holder.pid} on "):
            _empty_run_folder(run)
        assert (run / "metrics.json").is_file()
    finally:
        holder.kill()
        holder.wait()
    _empty_run_folder(run)
    assert list(run.iterdir()) == []
