"""Command line: ``python -m repro {search,tag,serve,export,evaluate,data,train,reproduce,
worker-env,compare} ARGS`` (the console script ``xlir-repro`` and ``python -m repro`` are the
same).

Every failure caused by input (a bad file, option or shape) prints one line starting with
``error:`` and exits with status 2. Heavy modules (torch) are imported only by the
subcommands that need them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path


from repro.core.errors import ReproError
from repro.core.fileio import existing_file, existing_folder, output_dir


def _load_npy(path: str, option: str):
    import numpy as np

    p = existing_file(path, option)
    with open(p, "rb") as f:
        if f.read(6) != b"\x93NUMPY":  # numpy would call any other file "pickled data"
            raise ReproError(f"{option} {path}: not a .npy file (no NumPy header; save the "
                            "array with numpy.save)")
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ReproError(f"{option} {path}: not a readable .npy array ({exc})") from None


def _print_report(report: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=1, sort_keys=True))
        return
    width = max(len(k) for k in report)
    for key, value in report.items():
        if isinstance(value, dict):
            print(f"{key}:")
            _print_report(value, False)
        else:
            print(f"{key:<{width}}  {value:.3f}" if isinstance(value, float) else f"{key:<{width}}  {value}")


def cmd_evaluate(args) -> int:
    if args.run:
        from repro.training.trainer import evaluate_run

        if args.scores or args.image_of_caption:
            raise ReproError("evaluate: --run recomputes a run's own metrics; --scores and "
                            "--image-of-caption score a matrix: give one or the other")
        metrics = evaluate_run(existing_folder(args.run, "--run"),
                               log=lambda m: print(m, file=sys.stderr), write=args.write)
        _print_report(metrics if args.json else metrics.summary, args.json)
        return 0
    if not (args.scores and args.image_of_caption):
        raise ReproError("evaluate needs --run DIR, or both --scores and --image-of-caption")
    from repro.scoring import metrics

    scores = _load_npy(args.scores, "--scores")
    groups = _load_npy(args.image_of_caption, "--image-of-caption")
    try:
        report = metrics.retrieval_report(scores, groups)
    except ValueError as exc:
        if "image_of_caption" not in str(exc):
            raise ReproError(f"--scores {args.scores}: {exc}") from None
        raise ReproError(f"--image-of-caption {args.image_of_caption}: {exc} (--scores "
                        f"{args.scores} has shape {tuple(scores.shape)})") from None
    _print_report(report, args.json)
    return 0


def cmd_data(args) -> int:
    from repro.data import emoji, paper

    if args.data_cmd == "verify":
        if args.root:  # the emoji asset is a file, a dataset a folder
            (existing_file if args.dataset == "emoji" else existing_folder)(args.root, "--root")
        check = emoji.verify_emoji if args.dataset == "emoji" else (
            lambda root: paper.verify(args.dataset, root))
        for line in check(args.root):
            print(line)
        return 0
    if args.data_cmd == "build-emoji":
        out = emoji.build_emoji_asset(existing_folder(args.cldr, "--cldr"),
                                      Path(args.out) if args.out else None, log=print)
        print(f"wrote {out}")
        return 0
    raise ReproError(f"unknown data command {args.data_cmd!r}")


def cmd_train(args) -> int:
    from repro.data.paper import cache_dir

    print(f"train: profile {args.profile}, seed {args.seed} -> {args.out}; loading the towers; "
          f"frozen features come from the cache in {cache_dir() / 'features'} (a first run "
          "on a machine computes them: a few minutes)", file=sys.stderr, flush=True)
    from repro.config import make_config
    from repro.core.locks import folder_writer

    cfg = make_config(args.profile, args.set, seed=args.seed)
    out = output_dir(args.out, "--out")
    with folder_writer(out, "--out"):  # before the heavy imports: a second writer fails at once
        from repro.training.runjob import finished_metrics
        from repro.training.trainer import train_and_evaluate

        finished = None if args.fresh else finished_metrics(cfg, out)
        if finished is not None:
            print(f"{out}: a finished run of this config; reusing it (--fresh trains it again)",
                  file=sys.stderr)
            metrics = finished
        else:
            metrics = train_and_evaluate(cfg, out, resume=not args.fresh,
                                         epoch_lines=not sys.stderr.isatty())
    print(f"results in {out}/metrics.json; the numbers below are on the test set "
          f"({'XTD10, 1,000 images' if cfg.profile == 'paper' else 'the 500 held-out emoji'})",
          file=sys.stderr)
    _print_report(metrics.summary, False)
    return 0


def cmd_reproduce(args) -> int:
    from repro.config import check_seeds
    from repro.design import SEEDS
    from repro.experiments.reproduce import reproduce

    seeds = SEEDS if args.seeds is None else args.seeds
    check_seeds(seeds, "--seeds")  # run_grid checks them too; here before --out
    output_dir(args.out, "--out")
    output_dir(args.runs, "--runs")
    if args.from_records and args.sample:
        raise ReproError("--from-records and --sample: choose one (--sample already ends with "
                         "the tables from the records)")
    source = "records" if args.from_records else "sample" if args.sample else "train"
    reproduce(profile=args.profile, out=Path(args.out), runs=Path(args.runs), fresh=args.fresh,
              notebooks=not args.no_notebooks, seeds=seeds, sets=args.set,
              update_readme=args.update_readme, jobs=args.jobs, executor=args.executor,
              source=source)
    return 0


def cmd_worker_env(args) -> int:
    """Shell lines that give a cluster worker this machine's numerics pins and one thread."""
    import shlex

    from repro.core import numerics, parallel

    env = {"PYTHONHASHSEED": "0", **numerics.env_for_subprocess(), **parallel.SINGLE_THREAD_ENV}
    for key in sorted(env):
        print(f"export {key}={shlex.quote(env[key])}")
    return 0


def cmd_compare(args) -> int:
    from repro.report.compare import compare, fingerprint_difference, format_summary

    if not 0 < args.alpha < 1:  # also refuses nan
        raise ReproError(f"--alpha {args.alpha}: must be between 0 and 1 (a test level)")
    summary = compare(existing_folder(args.old), existing_folder(args.new), args.alpha)
    for line in format_summary(summary):
        print(line)
    if summary["ok"]:
        return 0
    differs = fingerprint_difference(Path(args.old), Path(args.new))
    if args.strict == "auto" and differs and not summary["problems"]:
        print("compare: not failing: the two runs' numerics fingerprints differ, so bits and "
              "seed-level results may differ (" + "; ".join(differs) + ")")
        return 0
    return 1


def _app(name: str):
    """The command ``name`` of :mod:`repro.app.commands`, imported when it runs."""
    def run(args) -> int:
        from repro.app import commands

        return getattr(commands, name)(args)
    return run


def _model_options(p, k: int = 5, outputs: bool = True) -> None:
    p.add_argument("--run", help="a finished training run folder")
    p.add_argument("--model", help="an exported model folder (python -m repro export)")
    p.add_argument("-k", type=int, default=k, help=f"results per query or image (default {k})")
    if outputs:
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("--sheet", metavar="OUT.png", help="also write a contact sheet")


def _image_set_options(p) -> None:
    p.add_argument("--images", metavar="DIR", help="folder of images to search (default: the "
                   "model's own test images); embedded once, cached by content")
    p.add_argument("--all-emoji", action="store_true", help="search every emoji of the "
                   "benchmark (train, val and test splits; each hit says its split) instead "
                   "of the test split")


def plain(text: str) -> str:
    """A docstring's reST markup as ``--help`` shows it: ``code``, `text` and
    :role:`target` lose their backticks and role."""
    return re.sub(r"(?::[a-z]+:)?`{1,2}([^`]*)`{1,2}", r"\1", text)


def prog_name(argv0: str | None = None) -> str:
    """How the command was invoked, for ``usage:``: the console script's name (xlir-repro)
    when run as one, else ``python -m repro``. ``argv0``: default ``sys.argv[0]``."""
    name = Path(sys.argv[0] if argv0 is None else argv0).name
    return name if name and name != "__main__.py" and not name.endswith(".py") \
        and name not in ("-c", "-m", "pytest") else "python -m repro"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; ``prog``: the name ``usage:`` shows (default:
    :func:`prog_name`)."""
    parser = argparse.ArgumentParser(prog=prog or prog_name(), description=plain(__doc__).replace("python -m repro", prog or prog_name(), 1))
    sub = parser.add_subparsers(dest="cmd", required=True)

    se = sub.add_parser("search", help="images for text queries, in any language")
    se.add_argument("query", nargs="+", help="one or more texts to search for, e.g. "
                    "\"un chat qui rit\" \"un chien\" (embedded together)")
    _model_options(se)
    se.add_argument("--lang", help="the queries' language: the names printed beside each hit "
                    "are in it (the towers are multilingual); one of en de es fr it jp/ja ko "
                    "pl ru tr zh (default en)")
    _image_set_options(se)
    se.set_defaults(func=_app('cmd_search'))

    tg = sub.add_parser("tag", help="tags for images, in one or more languages")
    tg.add_argument("images_in", nargs="+", metavar="IMAGE", help="image files")
    _model_options(tg)
    tg.add_argument("--lang", default="en", help="language(s), comma-separated: "
                    "--lang pl,ja,tr prints them side by side (default en)")
    tg.add_argument("--vocab", metavar="FILE", help="tags to rank, one a line, UTF-8 (default: "
                    "the CLDR keyword vocabulary of each language, as in Table 3)")
    tg.set_defaults(func=_app('cmd_tag'), images=None)

    sv = sub.add_parser("serve", help="a search page on this machine (127.0.0.1): query, "
                        "language, k, result images, tags of a clicked image")
    _model_options(sv, k=12, outputs=False)
    _image_set_options(sv)
    sv.add_argument("--port", type=int, default=8000,
                    help="port on 127.0.0.1 (default 8000; 0: any free port, printed)")
    sv.set_defaults(func=_app('cmd_serve'))

    ex = sub.add_parser("export", help="write a run's model as a folder search and tag load")
    ex.add_argument("--run", required=True, help="a finished training run folder")
    ex.add_argument("--out", required=True, help="a new folder")
    ex.set_defaults(func=_app('cmd_export'))

    ev = sub.add_parser("evaluate", help="retrieval report from a score matrix or a run")
    ev.add_argument("--scores", help=".npy (n_captions, n_images) score matrix")
    ev.add_argument("--image-of-caption", help=".npy (n_captions,) image index per caption")
    ev.add_argument("--run", help="a training run folder: recompute its metrics and compare "
                    "them with its metrics.json")
    ev.add_argument("--write", action="store_true",
                    help="with --run: replace metrics.json by the recomputed metrics")
    ev.add_argument("--json", action="store_true", help="print JSON")
    ev.set_defaults(func=cmd_evaluate)

    da = sub.add_parser("data", help="verify or build data")
    dsub = da.add_subparsers(dest="data_cmd", required=True)
    ve = dsub.add_parser("verify", help="check a dataset's files and print counts")
    ve.add_argument("dataset", choices=["xtd10", "coco", "emoji"])
    ve.add_argument("--root", help="dataset folder (default: the usual lookup order)")
    be = dsub.add_parser("build-emoji", help="rebuild the emoji asset from CLDR XML")
    be.add_argument("--cldr", required=True, help="folder with annotations/ and annotationsDerived/")
    be.add_argument("--out", help="output file (default: the packaged asset)")
    da.set_defaults(func=cmd_data)

    tr = sub.add_parser("train", help="train one arm and evaluate it")
    tr.add_argument("--profile", default="mini", choices=["mini", "paper"])
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--out", required=True, help="run folder")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key (repeatable)")
    tr.add_argument("--fresh", action="store_true", help="ignore checkpoints in --out")
    tr.set_defaults(func=cmd_train)

    rp = sub.add_parser("reproduce", help="run the grid, write paper_tables/, run notebooks")
    rp.add_argument("--profile", choices=["auto", "mini", "paper"], default="auto",
                    help="auto (default): paper when COCO 2014 is found at XLIR_COCO_DIR, else mini")
    rp.add_argument("--out", default="paper_tables",
                    help="folder for tables, figures and findings (default: paper_tables)")
    rp.add_argument("--runs", default="runs",
                    help="folder of the training runs; finished runs are reused (default: runs)")
    rp.add_argument("--seeds", type=int, nargs="+", default=None,
                    help="the grid's seeds; each arm runs on those of its own seeds among them "
                         "(default: 0-19: the endpoints' arms run on all 20, the others on "
                         "0-4 or 0-2)")
    rp.add_argument("--fresh", action="store_true", help="redo finished runs and caches")
    rp.add_argument("--no-notebooks", action="store_true",
                    help="do not execute the notebooks (default: execute them)")
    rp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key of every run (repeatable; default: none)")
    rp.add_argument("--jobs", type=int, default=None,
                    help="runs and feature chunks computed at once, each in a worker process "
                         "on one thread (the same bits for every N; at most the usable cores, "
                         "said when capped; default: the usable cores in the mini profile, one "
                         "per GPU in the paper profile)")
    rp.add_argument("--executor", default="local", metavar="local|dask://HOST:PORT",
                    help="where the runs go: local worker processes (default) or the Dask "
                         "scheduler at HOST:PORT, reached before any work (pip install "
                         "'xlir-repro[cluster]'; runs folder and feature cache on a filesystem "
                         "the workers share)")
    rp.add_argument("--from-records", action="store_true",
                    help="train nothing: every table, figure and notebook from the run records "
                         "in OUT/runs alone (default: train or reuse every run, then write "
                         "their records there)")
    rp.add_argument("--sample", action="store_true",
                    help="CI's check: train only the declared sample of the grid (every "
                         "distinct configuration at its first seed, one more seed per arm "
                         "chosen from the commit hash), fail unless each equals its record in "
                         "OUT/runs, then as --from-records (default: the whole grid)")
    rp.add_argument("--update-readme", choices=["auto", "yes", "no"], default="auto",
                    help="embed the tables in README.md: auto (default) only when --out is "
                         "./paper_tables and --seeds and --set are the defaults")
    rp.set_defaults(func=cmd_reproduce)
    we = sub.add_parser("worker-env", help="print the environment a Dask worker needs "
                        "(numerics pins, one thread): eval \"$(python -m repro worker-env)\"")
    we.set_defaults(func=cmd_worker_env)
    co = sub.add_parser("compare", help="compare a regenerated paper_tables/ with another")
    co.add_argument("old", help="reference paper_tables folder (e.g. the committed one)")
    co.add_argument("new", help="regenerated paper_tables folder")
    co.add_argument("--alpha", type=float, default=0.05,
                    help="family-wise error rate of the per-cell Welch tests (Bonferroni; "
                    "default 0.05)")
    co.add_argument("--strict", choices=["yes", "auto"], default="yes",
                    help="yes (default): any failed cell exits 1; auto: cells that differ "
                    "between the folders fail only when both runs have the same numerics "
                    "fingerprint (CPU, kernel pins, threads, library versions, from "
                    "manifest.json); an inconsistent file always fails")
    co.set_defaults(func=cmd_compare)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ReproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {_interrupted(args)}", file=sys.stderr)
        return 130


def _interrupted(args) -> str:
    """What an interrupted command kept, and how to go on (one line)."""
    if args.cmd == "train" and not (Path(args.out) / "checkpoint.pt").is_file():
        return (f"before the run's first checkpoint, so nothing was kept in {args.out}; the "
                "same command starts the run from its beginning")
    if args.cmd == "train":
        return (f"the run's last checkpoint is in {args.out} (written every few epochs); the "
                "same command resumes from it and ends with the same bits")
    if args.cmd == "reproduce" and not _has_runs(Path(args.runs)):
        return (f"before any run was written to {args.runs} (the feature sets finished so far "
                "are cached); the same command starts again from there")
    if args.cmd == "reproduce":
        return (f"finished runs are kept in {args.runs}, each unfinished one at its last "
                "checkpoint; the same command reuses and resumes them")
    if args.cmd == "serve":
        return "the search page stopped (it writes nothing)"
    return "every file is written atomically, so nothing was left half-written"


def _has_runs(runs: Path) -> bool:
    """Does ``runs`` hold a run's checkpoint (finished or not)?"""
    return runs.is_dir() and next(runs.rglob("checkpoint.pt"), None) is not None
