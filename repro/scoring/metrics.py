"""Retrieval and tagging metrics, pure NumPy (this module must never import torch).

Conventions (method.md section 6):

* A score matrix ``S`` has one row per query and one column per item; larger is better.
* The rank of a query is the 1-based position of its best-ranked positive item in a
  *stable descending* order of its row: equal scores put the lower item index first. For a
  positive ``p``: ``rank = 1 + #{j : S[j] > S[p]} + #{j < p : S[j] == S[p]}``.
* Ranks are computed by counting, a chunk of query rows at a time; no row is ever sorted.
* Recalls and precisions are percentages; ranks are 1-based floats.
* Usable on its own with precomputed score matrices.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ranks", "retrieval_report", "tagging_report", "cluster_stats"]

#: Elements of a score block processed at once (about 16 MB of float32): the block and its
#: boolean temporaries stay small whatever the number of queries.
_BLOCK_ELEMENTS = 1 << 22


# ----------------------------------------------------------------------------- validation

def _as_scores(scores) -> np.ndarray:
    """Return ``scores`` as a finite 2-D float array, or raise ValueError."""
    arr = np.asarray(scores)
    if arr.ndim != 2:
        raise ValueError(f"scores must be a 2-D matrix, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"scores must be non-empty, got shape {arr.shape}")
    if arr.dtype.itemsize < 4 and (np.issubdtype(arr.dtype, np.floating)
                                   or arr.dtype.name == "bfloat16"):
        # float16 / bfloat16 (e.g. ml_dtypes, not a NumPy floating type): widened exactly to
        # float32, which changes no order and no tie, so the rest sees float32 or float64 only
        arr = arr.astype(np.float32)
    elif not np.issubdtype(arr.dtype, np.floating):
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"scores must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ValueError(f"scores contains {bad} NaN or inf value(s)")
    return arr


def _as_index_vector(values, n_items: int, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D int64 array of indices in ``[0, n_items)``."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_items):
        bad = arr[(arr < 0) | (arr >= n_items)][0]
        raise ValueError(f"{name} has index {bad} out of range [0, {n_items})")
    return arr


def _check_ks(ks) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks:
        raise ValueError("ks must name at least one cut-off")
    if min(ks) < 1:
        raise ValueError(f"every k must be >= 1, got ks={ks}")
    return ks


def _positive_lists(positives, n_queries: int, n_items: int) -> list[np.ndarray]:
    """Normalise a sequence of per-query positive index arrays; each must be non-empty."""
    if len(positives) != n_queries:
        raise ValueError(f"positives has {len(positives)} entries but scores has {n_queries} "
                         "query rows")
    out = []
    for q, pos in enumerate(positives):
        arr = _as_index_vector(np.atleast_1d(np.asarray(pos)), n_items, f"positives[{q}]")
        if arr.size == 0:
            raise ValueError(f"positives[{q}] is empty: every query needs a positive item")
        out.append(arr)
    return out


# ----------------------------------------------------------------------------- ranking core

def _rows_per_chunk(n_items: int) -> int:
    return max(1, _BLOCK_ELEMENTS // max(1, n_items))


def _best_positive(scores: np.ndarray, pos_lists: list[np.ndarray]) -> np.ndarray:
    """Per query, the positive ranked first in stable descending order.

    That is the positive with the highest score, and the lowest index among equal scores.
    Returns an int64 array of shape (n_queries,).
    """
    best = np.empty(len(pos_lists), dtype=np.int64)
    for q, pos in enumerate(pos_lists):
        if pos.size == 1:
            best[q] = pos[0]
            continue
        vals = scores[q, pos]
        top = vals.max()
        best[q] = pos[vals == top].min()
    return best


def _count_ranks(block: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """1-based ranks of one positive per row of ``block`` (rows x items), by counting."""
    pos_score = block[np.arange(block.shape[0]), positive][:, None]
    above = np.count_nonzero(block > pos_score, axis=1)
    # Ties with the positive are rare: count the ones ranked before it only where they exist.
    n_equal = np.count_nonzero(block == pos_score, axis=1)
    tied_rows = np.flatnonzero(n_equal > 1)
    before = np.zeros(block.shape[0], dtype=np.int64)
    for r in tied_rows:
        p = positive[r]
        before[r] = np.count_nonzero(block[r, :p] == block[r, p])
    return 1 + above + before


def _ranks_of_best(scores: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Ranks of the given positive per query row, a chunk of rows at a time."""
    n_queries, n_items = scores.shape
    out = np.empty(n_queries, dtype=np.int64)
    step = _rows_per_chunk(n_items)
    for start in range(0, n_queries, step):
        stop = min(start + step, n_queries)
        block = np.ascontiguousarray(scores[start:stop])
        out[start:stop] = _count_ranks(block, best[start:stop])
    return out


def ranks(scores, positives) -> np.ndarray:
    """1-based rank of the best-ranked positive of each query.

    Args:
        scores: (n_queries, n_items) float matrix, larger is better.
        positives: either a 1-D int array of length n_queries (one positive item per query)
            or a sequence of n_queries non-empty int arrays (several positives per query).

    Returns:
        int64 array of shape (n_queries,): ranks in ``[1, n_items]``, ties broken by the
        stable-descending rule (equal score: lower item index first).
    """
    scores = _as_scores(scores)
    n_queries, n_items = scores.shape
    pos_arr = None
    if isinstance(positives, np.ndarray) and positives.ndim == 1 and positives.dtype != object:
        pos_arr = positives
    elif not isinstance(positives, np.ndarray) and len(positives) and all(
        np.ndim(p) == 0 for p in positives
    ):
        pos_arr = np.asarray(positives)
    if pos_arr is not None:
        best = _as_index_vector(pos_arr, n_items, "positives")
        if best.shape[0] != n_queries:
            raise ValueError(f"positives has shape {best.shape} but scores has shape "
                             f"{scores.shape}")
    else:
        best = _best_positive(scores, _positive_lists(positives, n_queries, n_items))
    return _ranks_of_best(scores, best)


# ----------------------------------------------------------------------------- summaries

def _rank_summary(r: np.ndarray, ks: tuple[int, ...], prefix: str) -> dict:
    out = {f"{prefix}_R@{k}": float(100.0 * np.mean(r <= k)) for k in ks}
    out[f"{prefix}_medr"] = float(np.median(r))
    out[f"{prefix}_meanr"] = float(np.mean(r))
    return out


def _captions_by_image(image_of_caption: np.ndarray, n_images: int) -> list[np.ndarray]:
    """Caption indices of each image, in increasing caption order; every image needs one."""
    order = np.argsort(image_of_caption, kind="stable")
    counts = np.bincount(image_of_caption, minlength=n_images)
    if (counts == 0).any():
        missing = int(np.flatnonzero(counts == 0)[0])
        raise ValueError(f"image {missing} has no caption in image_of_caption "
                         f"({int((counts == 0).sum())} image(s) without captions)")
    return np.split(order, np.cumsum(counts)[:-1])


def _report(t2i: np.ndarray, i2t: np.ndarray, ks: tuple[int, ...]) -> dict:
    report = _rank_summary(t2i, ks, "t2i")
    report.update(_rank_summary(i2t, ks, "i2t"))
    rsum_ks = [k for k in (1, 5, 10) if k in ks] or list(ks)
    report["rsum"] = float(
        sum(report[f"t2i_R@{k}"] + report[f"i2t_R@{k}"] for k in rsum_ks)
    )
    return report


def _check_image_of_caption(image_of_caption, n_captions: int, n_images: int) -> np.ndarray:
    g = np.asarray(image_of_caption)
    if g.ndim != 1 or g.shape[0] != n_captions:
        raise ValueError(f"image_of_caption has shape {g.shape} but {n_captions} captions "
                         f"need shape ({n_captions},)")
    return _as_index_vector(g, n_images, "image_of_caption")


def retrieval_report(scores, image_of_caption, ks=(1, 5, 10)) -> dict:
    """Text-to-image and image-to-text retrieval report from a caption x image score matrix.

    Args:
        scores: (n_captions, n_images) float matrix; ``scores[c, i]`` scores caption c
            against image i.
        image_of_caption: (n_captions,) int array; the image of each caption. Several
            captions may share an image; every image must have at least one caption.
        ks: recall cut-offs.

    Returns:
        dict with ``t2i_R@k``, ``t2i_medr``, ``t2i_meanr``, the same for ``i2t`` and
        ``rsum`` (sum of R@1, R@5, R@10 over both directions; over ``ks`` when those are
        not all requested). Recalls in percent, ranks 1-based.
    """
    ks = _check_ks(ks)
    return _report(*retrieval_ranks(scores, image_of_caption), ks)


def retrieval_ranks(scores, image_of_caption) -> tuple[np.ndarray, np.ndarray]:
    """The per-query ranks behind :func:`retrieval_report` (same arguments): (t2i, i2t),
    int64 arrays of shapes (n_captions,) and (n_images,), 1-based; t2i: the rank of each
    caption's image, i2t: the rank of each image's best-ranked caption."""
    scores = _as_scores(scores)
    n_captions, n_images = scores.shape
    g = _check_image_of_caption(image_of_caption, n_captions, n_images)
    caps = _captions_by_image(g, n_images)
    t2i = _ranks_of_best(scores, g)
    scores_t = scores.T
    i2t = _ranks_of_best(scores_t, _best_positive(scores_t, caps))
    return t2i, i2t


def tagging_report(scores, tags_of_image, ks=(1, 5, 10)) -> dict:
    """Image tagging report: each image ranks the whole tag vocabulary.

    Args:
        scores: (n_images, n_tags) float matrix.
        tags_of_image: sequence of n_images non-empty int arrays, the ground-truth tags.
        ks: cut-offs for precision and recall.

    Returns:
        dict with ``P@k`` and ``R@k`` for each k and ``mAP``, all in percent and averaged
        over images. Ranks follow the stable-descending rule. AP of an image with ground
        truth G and positive ranks r_1 < ... < r_|G| is ``mean_j (j / r_j)``.
    """
    ks = _check_ks(ks)
    positive_ranks = _sorted_positive_ranks(scores, tags_of_image)
    n_true = np.array([r.size for r in positive_ranks], dtype=float)
    out = {}
    for k in ks:
        hits = np.array([np.count_nonzero(r <= k) for r in positive_ranks], dtype=float)
        out[f"P@{k}"] = float(100.0 * np.mean(hits / k))
        out[f"R@{k}"] = float(100.0 * np.mean(hits / n_true))
    out["mAP"] = float(100.0 * np.mean(_ap_of_ranks(positive_ranks)))
    return out


def average_precisions(scores, tags_of_image) -> np.ndarray:
    """Each image's average precision (a fraction in (0, 1]) when it ranks the whole tag
    vocabulary: (n_images,) float64, same arguments and rules as :func:`tagging_report`,
    whose ``mAP`` is 100 times their mean."""
    return _ap_of_ranks(_sorted_positive_ranks(scores, tags_of_image))


def chance_average_precision(n_true, n_tags: int) -> np.ndarray:
    """Expected AP of an image with ``n_true`` true tags (array) among ``n_tags`` when the
    vocabulary is ranked in a uniformly random order: with H the harmonic number H_n_tags,
    H / n + (R - 1) (n - H) / (n (n - 1)) for R true tags among n (exact; 1 when R = n)."""
    r = np.asarray(n_true, dtype=float)
    n = int(n_tags)
    h = float(np.sum(1.0 / np.arange(1, n + 1)))
    if n == 1:
        return np.ones_like(r)
    return h / n + (r - 1) * (n - h) / (n * (n - 1))


def _sorted_positive_ranks(scores, tags_of_image) -> list[np.ndarray]:
    """Per image the sorted 1-based stable-descending ranks of its distinct true tags."""
    scores = _as_scores(scores)
    n_images, n_tags = scores.shape
    tag_lists = _positive_lists(tags_of_image, n_images, n_tags)
    return [np.sort(_tag_ranks(scores[i], np.unique(tags))) for i, tags in enumerate(tag_lists)]


def _ap_of_ranks(positive_ranks: list[np.ndarray]) -> np.ndarray:
    """AP of each image from its sorted positive ranks r_1 < ... < r_|G|: mean_j (j / r_j)."""
    return np.array([np.mean(np.arange(1, r.size + 1) / r) for r in positive_ranks])


def _tag_ranks(row: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """1-based stable-descending ranks of several items in one score row (n_items,)."""
    s = row[tags][:, None]
    above = np.count_nonzero(row[None, :] > s, axis=1)
    idx = np.arange(row.shape[0])[None, :]
    before = np.count_nonzero((row[None, :] == s) & (idx < tags[:, None]), axis=1)
    return 1 + above + before


# ----------------------------------------------------------------------------- text clusters

def cluster_stats(emb_by_lang: dict, text_ids: dict | None = None) -> dict:
    """How tight the cross-lingual clusters of captions are (Figure 1 of the paper).

    ``emb_by_lang``: language -> (n, d) L2-normalised caption embeddings, row i of every
    language describing item i. Over all pairs of languages: ``same`` is the mean cosine of
    two captions of the same item, ``diff`` of two captions of different items, ``gap`` =
    same - diff, ``separation`` = gap / std of the different-item cosines (scale-free).
    ``text_ids``: language -> (n,) ids of the normalised caption texts in one numbering; a
    pair of two identical texts counts neither as same-item nor as different-item.
    """
    langs = list(emb_by_lang)
    same, diff = [], []
    for i, a in enumerate(langs):
        for b in langs[i + 1:]:
            s = np.asarray(emb_by_lang[a]) @ np.asarray(emb_by_lang[b]).T
            eye = np.eye(s.shape[0], dtype=bool)
            counted = (np.ones_like(eye) if text_ids is None else
                       np.asarray(text_ids[a])[:, None] != np.asarray(text_ids[b])[None, :])
            same.append(s[eye & counted])
            diff.append(s[~eye & counted])
    same, diff = np.concatenate(same), np.concatenate(diff)
    gap = float(same.mean() - diff.mean())
    spread = float(diff.std())
    return {"same": float(same.mean()), "diff": float(diff.mean()), "gap": gap,
            "separation": gap / spread if spread > 0 else float("nan")}
