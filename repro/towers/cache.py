"""On-disk cache of frozen tower outputs (text features, paper-profile image features).

An entry is ``<name>.npy`` plus ``<name>.json`` metadata: everything that decides the
content (tower or backbone and its weights' sha256 or revision, preprocessing, pooling,
truncation, batch, device and precision, the number and sha256 of the inputs, the
CPU-numerics mode and kernel level). No thread or worker count: every feature is computed in
fixed chunks, each on one thread (:mod:`repro.core.parallel`), so the bytes are the same whatever
the number of workers. A lookup whose metadata differs from what is asked for is
rebuilt, never silently reused, and so is an array whose content does not match the sha256
recorded with it (a one-line warning says which). Both files are written atomically (the array streamed to a
temporary file and renamed, first), so a crash never leaves an entry that looks complete.
One process computes a missing entry at a time: it holds the entry's lock
(``.<name>.lock``, :func:`repro.core.locks.exclusive`), and another process that misses the
same entry meanwhile waits for it (saying whom it waits for), then reads what it wrote.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from repro.core import numerics
from repro.core.errors import reason
from repro.core.fileio import atomic_write, atomic_write_bytes, sha256_file
from repro.core.locks import exclusive
from repro.data.paper import cache_dir


def inputs_sha256(items: list[str]) -> str:
    """sha256 of a list of strings (texts or file descriptors), order-sensitive."""
    h = hashlib.sha256()
    for s in items:
        b = s.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def cached(kind: str, meta: dict, items: list[str], compute, root: Path | None = None,
           log=print, what: str = "") -> np.ndarray:
    """Return ``compute(items)`` (float32 (n, d)), from the cache when its metadata matches.

    Args:
        kind: a short label for the file name (e.g. ``text-muse``).
        meta: what identifies the computation besides the inputs (tower, weights, ...).
        items: the inputs; their sha256 and count are part of the metadata.
        compute: callable items -> array with one row per item.
        what: what the items are and why they are needed, for the progress line of a miss.
    """
    root = Path(root) if root else cache_dir() / "features"
    # Kernels decide the last bits: features made with other numerics are not reused.
    want = dict(meta, n_items=len(items), inputs_sha256=inputs_sha256(items),
                numerics=numerics.cache_key())
    key = inputs_sha256([json.dumps(want, sort_keys=True)])[:20]
    arr_path, meta_path = root / f"{kind}-{key}.npy", root / f"{kind}-{key}.json"
    arr = _usable_entry(arr_path, meta_path, want, log, quiet=True)
    if arr is not None:
        return arr
    root.mkdir(parents=True, exist_ok=True)
    with exclusive(root / f".{kind}-{key}.lock", busy=None, wait=lambda holder: log(
            f"feature cache {arr_path}: being computed by another process ({holder}); "
            "waiting for it")):
        arr = _usable_entry(arr_path, meta_path, want, log)  # the other may have written it
        if arr is not None:
            return arr
        return _compute_entry(kind, items, compute, want, arr_path, meta_path, log, what)


def _usable_entry(arr_path: Path, meta_path: Path, want: dict, log, quiet: bool = False):
    """The cached array (float32 (n, d)) when the entry is there and usable, else None; an
    entry that is there but unusable is named in a warning (``quiet``: not yet, the caller
    looks again under the entry's lock)."""
    if not (meta_path.exists() and arr_path.exists()):
        return None
    problem = _entry_problem(meta_path, arr_path, want)
    if problem is None:
        return np.load(arr_path, allow_pickle=False)
    if not quiet:
        log(f"warning: feature cache {problem[0]}: {problem[1]}; rebuilding it")
    return None


def _compute_entry(kind: str, items: list[str], compute, want: dict, arr_path: Path,
                   meta_path: Path, log, what: str) -> np.ndarray:
    """``compute(items)`` (float32 (n, d)), written as the entry (array first, then its
    metadata with the array's sha256)."""
    log(f"{kind}: computing {what or f'{len(items):,} items'} (not in the feature cache yet)")
    t0 = time.perf_counter()
    arr = np.ascontiguousarray(compute(items), dtype=np.float32)
    log(f"{kind}: {len(items):,} items computed in {time.perf_counter() - t0:.1f} s "
        f"(cached from now on)")
    if arr.shape[0] != len(items):
        raise RuntimeError(f"{kind}: computed {arr.shape[0]} rows for {len(items)} items")
    atomic_write(arr_path, lambda f: np.save(f, arr, allow_pickle=False))  # streamed, no copy
    entry = dict(want, array_sha256=array_sha256(arr))
    atomic_write_bytes(meta_path, json.dumps(entry, sort_keys=True, indent=1).encode())
    return arr


def array_sha256(arr: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes (C order)."""
    h = hashlib.sha256(f"{arr.dtype.str} {arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).data)
    return h.hexdigest()


def _entry_problem(meta_path: Path, arr_path: Path, want: dict) -> tuple[Path, str] | None:
    """(the file, why) a cache entry cannot be used (stale metadata, an unreadable file, or an
    array whose content is not the one its metadata recorded), or None when it can."""
    try:
        have = json.loads(meta_path.read_text())
    except (ValueError, OSError) as exc:
        return meta_path, f"unreadable ({reason(exc)})"
    try:
        arr = np.load(arr_path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        return arr_path, f"unreadable ({reason(exc)})"
    if not isinstance(have, dict) or {k: v for k, v in have.items() if k != "array_sha256"} != want:
        return meta_path, "stale (made for other settings)"
    if "array_sha256" not in have:
        return meta_path, "made by an older version (no checksum of its content)"
    if have["array_sha256"] != array_sha256(arr) or arr.shape[0] != want["n_items"]:
        return arr_path, "its content does not match its checksum (changed on disk)"
    return None


def file_sha256s(paths: list[Path], index: Path | None = None) -> list[str]:
    """The sha256 of each file, from a persistent index (``index``, default in the feature
    cache) while a file's size and modification time are unchanged; new or changed files are
    hashed and the index rewritten."""
    index = Path(index) if index else cache_dir() / "features" / "file-sha256-index.json"
    try:
        known = json.loads(index.read_text())
    except (OSError, ValueError):
        known = {}
    out, changed = [], False
    for p in paths:
        st = Path(p).stat()
        key, stamp = str(Path(p).resolve()), [st.st_size, st.st_mtime_ns]
        entry = known.get(key)
        if entry is None or entry[:2] != stamp:
            entry, changed = stamp + [sha256_file(Path(p))], True
            known[key] = entry
        out.append(entry[2])
    if changed:
        atomic_write_bytes(index, json.dumps(known, sort_keys=True).encode())
    return out


def text_features(tower_name: str, tower_meta: dict, texts: list[str], compute,
                  root: Path | None = None, what: str = "") -> np.ndarray:
    """Frozen text tower outputs for ``texts`` (float32 (n, dim)), cached.

    ``compute(texts)`` is only called on a cache miss (loading a tower costs seconds).
    """
    return cached(f"text-{tower_name}", dict(tower_meta, tower=tower_name), list(texts),
                  compute, root, what=what)
