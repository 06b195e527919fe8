"""The commands of the app, for :mod:`repro.cli`: ``search`` (images for texts, in any
language), ``tag`` (tags for images, in one or more languages), ``export`` (a run's model as
a folder the other two load) and ``serve`` (a search page on this machine). Each takes the
parsed arguments and returns the exit code; bad input is a one-line :class:`ReproError`
before any work. All of them go through the Python API (:mod:`repro.app.model`) and print its
records (:mod:`repro.app.render`)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from repro.app import render, search
from repro.app.export import export, load_export, load_run
from repro.app.model import Model
from repro.core.errors import ReproError
from repro.core.fileio import folder_problem, output_dir


def _load_model(args) -> Model:
    """The model of ``--run RUN`` or ``--model DIR`` (exactly one)."""
    if bool(args.run) == bool(args.model):
        raise ReproError("give one of --run RUN (a finished run folder) or --model DIR (an export)")
    return Model(load_run(Path(args.run)) if args.run else load_export(Path(args.model)))


def _check_sheet(path: str | None) -> None:
    """``--sheet`` must be a .png in an existing folder (checked before any work)."""
    if path is None:
        return
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ReproError(f"--sheet {path}: must end in .png")
    problem = folder_problem(p.parent)
    if problem:
        raise ReproError(f"--sheet {path}: {p.parent}: {problem}")
    if p.is_dir():
        raise ReproError(f"--sheet {path}: is a folder")


def _check_k(k: int) -> None:
    if k < 1:
        raise ReproError(f"-k {k}: must be >= 1")


def image_choice(args):
    """What ``search`` ranks, checked before the model loads: ``"test"`` (the model's own
    test images; the default), ``"all"`` (``--all-emoji``), or the readable images of
    ``--images DIR`` (skipped files counted on stderr)."""
    if args.images and args.all_emoji:
        raise ReproError(f"--images {args.images} and --all-emoji: give one (a folder of your "
                         "own images, or every emoji of the benchmark)")
    if args.all_emoji:
        return "all"
    if not args.images:
        return "test"
    paths, skipped = search.image_files(Path(args.images))
    if skipped:
        print(f"skipped {len(skipped)} file(s) of {args.images} that are not readable "
              f"images (first: {skipped[0][0].name}: {skipped[0][1]})", file=sys.stderr)
    return paths


def cmd_search(args) -> int:
    queries = [search.check_query(q) for q in args.query]
    lang = args.lang if args.lang is not None else "en"
    search.check_lang(lang)
    _check_k(args.k)
    _check_sheet(args.sheet)
    images = image_choice(args)
    with contextlib.redirect_stdout(sys.stderr):  # progress to stderr: stdout is the result
        m = _load_model(args)
        found = m.search(queries, lang.strip(), args.k, images)
        image_set = m.images(images).info
        if args.sheet:
            search.search_sheet([s.to_dict() for s in found], Path(args.sheet))
    if args.sheet:
        print(f"wrote the contact sheet {args.sheet} ({len(found)} quer"
              f"{'y' if len(found) == 1 else 'ies'}, top {args.k})", file=sys.stderr)
    if args.json:
        print(json.dumps(render.search_json(m.info(), image_set, found), indent=1,
                         ensure_ascii=False))
    else:
        print("\n".join(render.search_lines(m.info(), image_set, found)))
    return 0


def cmd_tag(args) -> int:
    langs = [c.strip() for c in args.lang.split(",") if c.strip()]
    for lang in langs:
        search.check_lang(lang)
    if not langs:
        raise ReproError(f"--lang {args.lang}: no language in it; give one or more codes, "
                         "comma-separated (e.g. --lang pl,ja), or leave it out for en")
    _check_k(args.k)
    _check_sheet(args.sheet)
    vocab = search.vocabulary("en", Path(args.vocab)) if args.vocab else None
    paths = [search.check_image(Path(f)) for f in args.images_in]
    with contextlib.redirect_stdout(sys.stderr):  # progress to stderr: stdout is the result
        m = _load_model(args)
        tagged = m.tag(paths, langs, args.k, vocab)
        if args.sheet:
            search.tag_sheet([t.to_dict() for t in tagged], Path(args.sheet))
    if args.sheet:
        print(f"wrote the contact sheet {args.sheet} ({len(tagged)} image(s), "
              f"{', '.join(langs)})", file=sys.stderr)
    if args.json:
        print(json.dumps(render.tag_json(m.info(), langs, tagged), indent=1, ensure_ascii=False))
    else:
        print("\n".join(render.tag_lines(m.info(), tagged)))
    return 0


def cmd_serve(args) -> int:
    from repro.app import serve

    _check_k(args.k)
    if not 0 <= args.port <= 65535:
        raise ReproError(f"--port {args.port}: must be 0 (any free port) to 65535")
    images = image_choice(args)
    with contextlib.redirect_stdout(sys.stderr):
        m = _load_model(args)
    serve.serve(m, images, args.port, args.k)
    return 0


def cmd_export(args) -> int:
    out = export(load_run(Path(args.run)), output_dir(args.out, "--out"))
    print(f"wrote {out} ({', '.join(sorted(p.name for p in out.iterdir()))})")
    return 0
