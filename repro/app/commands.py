"""The commands of the app, for :mod:`repro.cli`: ``search`` (images for a text, in any
language), ``tag`` (tags for images, in one or more languages) and ``export`` (a run's model as
a folder the other two load). Each takes the parsed arguments and returns the exit code; bad
input is a one-line :class:`ReproError` before any work."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from repro.app import search
from repro.app.export import export, load_export, load_run
from repro.core.errors import ReproError
from repro.core.fileio import folder_problem, output_dir


def _load_model(args):
    """The model of ``--run RUN`` or ``--model DIR`` (exactly one)."""
    if bool(args.run) == bool(args.model):
        raise ReproError("give one of --run RUN (a finished run folder) or --model DIR (an export)")
    return load_run(Path(args.run)) if args.run else load_export(Path(args.model))


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


def _image_paths(args, files=None) -> list[Path] | None:
    """The image files to rank, checked before the model loads: ``files`` (tag), the readable
    images of ``--images`` (skipped files counted on stderr), or None: the model's own test
    images."""
    if files is not None:
        return [search.check_image(Path(f)) for f in files]
    if not args.images:
        return None
    paths, skipped = search.image_files(Path(args.images))
    if skipped:
        print(f"skipped {len(skipped)} file(s) of {args.images} that are not readable "
              f"images (first: {skipped[0][0].name}: {skipped[0][1]})", file=sys.stderr)
    return paths


def _images(m, paths: list[Path] | None):
    """(paths, embeddings) of the images to rank (None: the model's own test images)."""
    if paths is None:
        return search.test_images(m)
    return paths, search.embed_image_files(m, paths)


def cmd_search(args) -> int:
    search.check_query(args.query)
    lang = search.check_lang(args.lang) if args.lang is not None else None
    if args.k < 1:
        raise ReproError(f"-k {args.k}: must be >= 1")
    _check_sheet(args.sheet)
    paths = _image_paths(args)
    with contextlib.redirect_stdout(sys.stderr):  # progress to stderr: stdout is the result
        m = _load_model(args)
        hits = search.search(m, args.query, lang or "en", *_images(m, paths), args.k)
        if args.sheet:
            search.search_sheet(args.query, hits, Path(args.sheet))
    if args.json:
        print(json.dumps({"query": args.query, "lang": lang, "model": str(m.source),
                          "results": hits}, indent=1, ensure_ascii=False))
    else:
        for h in hits:
            print(f"{h['rank']:>3}  {h['score']:.4f}  {h['path']}")
    return 0


def cmd_tag(args) -> int:
    langs = [search.check_lang(c) for c in args.lang.split(",") if c.strip()]
    if not langs:
        raise ReproError(f"--lang {args.lang}: no language in it; give one or more codes, "
                         "comma-separated (e.g. --lang pl,ja), or leave it out for en")
    if args.k < 1:
        raise ReproError(f"-k {args.k}: must be >= 1")
    _check_sheet(args.sheet)
    vocabs = {lang: search.vocabulary(lang, Path(args.vocab) if args.vocab else None)
              for lang in langs}
    paths = _image_paths(args, args.images_in)
    with contextlib.redirect_stdout(sys.stderr):  # progress to stderr: stdout is the result
        m = _load_model(args)
        paths, images = _images(m, paths)
        tags = {lang: search.tag(m, images, lang, vocabs[lang], args.k) for lang in langs}
        per_image = [{"path": str(p), "tags": {lang: tags[lang][i] for lang in langs}}
                     for i, p in enumerate(paths)]
        if args.sheet:
            search.tag_sheet(per_image, Path(args.sheet))
    if args.json:
        print(json.dumps({"model": str(m.source), "langs": langs, "images": per_image},
                         indent=1, ensure_ascii=False))
        return 0
    for item in per_image:
        print(item["path"])
        print("  rank  " + "  ".join(f"{lang:<24}" for lang in langs))
        for r in range(len(item["tags"][langs[0]])):
            print(f"  {r + 1:>4}  " + "  ".join(
                f"{t['tag'][:16]:<16} {t['score']:.3f}" for t in
                (item["tags"][lang][r] for lang in langs)))
    return 0


def cmd_export(args) -> int:
    out = export(load_run(Path(args.run)), output_dir(args.out, "--out"))
    print(f"wrote {out} ({', '.join(sorted(p.name for p in out.iterdir()))})")
    return 0
