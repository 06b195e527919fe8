"""Metric tests: hand-worked golden values, an independent slow implementation, bad input."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.scoring import metrics


# ----------------------------------------------------------------------------- slow reference

def slow_rank(row, positives):
    """Sort the whole row by (-score, index) in pure Python; best 1-based positive position."""
    order = sorted(range(len(row)), key=lambda j: (-float(row[j]), j))
    return min(order.index(p) for p in positives) + 1


def slow_report(scores, g, ks=(1, 5, 10)):
    n_cap, n_img = scores.shape
    t2i = [slow_rank(scores[c], [g[c]]) for c in range(n_cap)]
    i2t = [slow_rank(scores[:, i], [c for c in range(n_cap) if g[c] == i]) for i in range(n_img)]
    out = {}
    for name, r in (("t2i", t2i), ("i2t", i2t)):
        for k in ks:
            out[f"{name}_R@{k}"] = 100.0 * sum(x <= k for x in r) / len(r)
        s = sorted(r)
        m = len(s) // 2
        out[f"{name}_medr"] = float(s[m]) if len(s) % 2 else (s[m - 1] + s[m]) / 2
        out[f"{name}_meanr"] = sum(r) / len(r)
    rsum_ks = [k for k in (1, 5, 10) if k in ks]
    out["rsum"] = sum(out[f"{d}_R@{k}"] for d in ("t2i", "i2t") for k in rsum_ks)
    return out


def assert_reports_close(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-9), k


# ----------------------------------------------------------------------------- golden values

def test_one_caption_per_image_with_ties():
    s = np.array([[0.9, 0.1, 0.9],   # caption 0: ties with image 2, image 0 is lower -> 1
                  [0.5, 0.5, 0.2],   # caption 1: ties with image 0, which comes first -> 2
                  [0.3, 0.8, 0.1]])  # caption 2: lowest score -> 3
    g = np.array([0, 1, 2])
    assert metrics.ranks(s, g).tolist() == [1, 2, 3]
    # Image queries (columns): image 0 -> caption 0 first; image 1: 0.8 beats 0.5 -> 2;
    # image 2: 0.9, 0.2 beat 0.1 -> 3.
    assert metrics.ranks(s.T, g).tolist() == [1, 2, 3]
    rep = metrics.retrieval_report(s, g)
    assert rep["t2i_R@1"] == pytest.approx(100 / 3)
    assert rep["t2i_R@5"] == 100.0
    assert rep["t2i_medr"] == 2.0 and rep["t2i_meanr"] == 2.0
    assert rep["i2t_R@1"] == pytest.approx(100 / 3)
    assert rep["rsum"] == pytest.approx(2 * (100 / 3 + 100 + 100))


def test_several_captions_per_image():
    s = np.array([[0.2, 0.7],    # c0 -> image 0: 0.7 above -> 2
                  [0.6, 0.6],    # c1 -> image 0: tie, image 0 first -> 1
                  [0.4, 0.4],    # c2 -> image 1: tie, image 0 first -> 2
                  [0.1, 0.5]])   # c3 -> image 1 -> 1
    g = np.array([0, 0, 1, 1])
    rep = metrics.retrieval_report(s, g, ks=(1, 2))
    assert rep["t2i_R@1"] == 50.0 and rep["t2i_R@2"] == 100.0
    assert rep["t2i_medr"] == 1.5 and rep["t2i_meanr"] == 1.5
    # Image 0: best positive c1 (0.6) -> 1. Image 1: best positive c3 (0.5) under 0.7, 0.6 -> 3.
    assert metrics.ranks(s.T, [np.array([0, 1]), np.array([2, 3])]).tolist() == [1, 3]
    assert rep["i2t_R@1"] == 50.0 and rep["i2t_R@2"] == 50.0
    assert rep["i2t_medr"] == 2.0 and rep["i2t_meanr"] == 2.0
    assert rep["rsum"] == pytest.approx(50 + 50)  # only R@1 of (1, 5, 10) was asked for


def test_all_equal_scores_rank_by_index():
    s = np.zeros((4, 2))
    g = np.array([1, 0, 1, 0])
    assert metrics.ranks(s, g).tolist() == [2, 1, 2, 1]
    # image 0 positives {1, 3}: best is caption 1, after caption 0 -> 2; image 1: caption 0 -> 1.
    assert metrics.ranks(s.T, [np.array([1, 3]), np.array([0, 2])]).tolist() == [2, 1]


def test_report_keys_follow_ks():
    rep = metrics.retrieval_report(np.eye(3), np.arange(3), ks=(1, 2))
    assert list(rep) == ["t2i_R@1", "t2i_R@2", "t2i_medr", "t2i_meanr",
                         "i2t_R@1", "i2t_R@2", "i2t_medr", "i2t_meanr", "rsum"]
    default = metrics.retrieval_report(np.eye(3), np.arange(3))
    assert [k for k in default if "R@" in k] == [
        "t2i_R@1", "t2i_R@5", "t2i_R@10", "i2t_R@1", "i2t_R@5", "i2t_R@10"]


def test_tagging_golden():
    s = np.array([[0.9, 0.5, 0.5, 0.1],   # tags {1, 3}: ranks 2 and 4
                  [0.3, 0.3, 0.3, 0.3]])  # tag {2}: all tied, index 2 -> rank 3
    rep = metrics.tagging_report(s, [np.array([1, 3]), np.array([2])], ks=(1, 2, 4))
    assert rep["P@1"] == 0.0
    assert rep["P@2"] == pytest.approx(100 * (1 / 2 + 0) / 2)
    assert rep["P@4"] == pytest.approx(100 * (2 / 4 + 1 / 4) / 2)
    assert rep["R@2"] == pytest.approx(100 * (1 / 2 + 0) / 2)
    assert rep["R@4"] == 100.0
    # AP image 0: (1/2 + 2/4) / 2 = 0.5; image 1: 1/3.
    assert rep["mAP"] == pytest.approx(100 * (0.5 + 1 / 3) / 2)


def slow_tagging(scores, tags, ks):
    out = {f"P@{k}": 0.0 for k in ks} | {f"R@{k}": 0.0 for k in ks} | {"mAP": 0.0}
    for row, t in zip(scores, tags):
        order = sorted(range(len(row)), key=lambda j: (-float(row[j]), j))
        t = set(int(x) for x in t)
        hits, ap = 0, 0.0
        for pos, j in enumerate(order, 1):
            if j in t:
                hits += 1
                ap += hits / pos
            for k in ks:
                if pos == k:
                    out[f"P@{k}"] += 100 * hits / k / len(scores)
                    out[f"R@{k}"] += 100 * hits / len(t) / len(scores)
        out["mAP"] += 100 * ap / len(t) / len(scores)
    return out


# ----------------------------------------------------------------------------- random vs slow

@st.composite
def tied_problem(draw):
    n_img = draw(st.integers(1, 6))
    n_cap = draw(st.integers(n_img, 14))
    g = list(range(n_img)) + draw(st.lists(st.integers(0, n_img - 1),
                                           min_size=n_cap - n_img, max_size=n_cap - n_img))
    g = np.array(draw(st.permutations(g)))
    values = draw(st.lists(st.integers(-2, 2), min_size=n_cap * n_img, max_size=n_cap * n_img))
    return np.array(values, dtype=np.float64).reshape(n_cap, n_img) / 4, g


@settings(max_examples=200, deadline=None)
@given(tied_problem())
def test_matches_slow_reference_with_forced_ties(problem):
    s, g = problem
    ks = (1, 2, 5)
    expected = slow_report(s, g, ks)
    assert_reports_close(metrics.retrieval_report(s, g, ks), expected)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10_000))
def test_tagging_matches_slow_reference(seed):
    rng = np.random.default_rng(seed)
    n_img, n_tags = rng.integers(1, 6), rng.integers(2, 12)
    s = rng.integers(0, 3, size=(n_img, n_tags)).astype(float)
    tags = [rng.choice(n_tags, size=rng.integers(1, n_tags + 1), replace=False)
            for _ in range(n_img)]
    ks = (1, 2, 5)
    got = metrics.tagging_report(s, tags, ks)
    want = slow_tagging(s, tags, ks)
    for k in want:
        if k.startswith(("P@", "R@")) and int(k[2:]) > n_tags:
            continue  # the slow loop never reaches a cut-off beyond the vocabulary
        assert got[k] == pytest.approx(want[k]), k


def test_chunking_does_not_change_results(monkeypatch):
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(40), 3)
    s = rng.integers(0, 5, size=(120, 40)).astype(np.float32)
    whole = metrics.retrieval_report(s, g)
    monkeypatch.setattr(metrics, "_BLOCK_ELEMENTS", 7)  # one row per chunk
    assert metrics.retrieval_report(s, g) == whole
    assert_reports_close(whole, slow_report(s, g))


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_rejected(bad):
    s = np.eye(3)
    s[1, 2] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        metrics.retrieval_report(s, np.arange(3))


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(4,\).*3 captions|shape \(4,\)"):
        metrics.retrieval_report(np.eye(3), np.arange(4) % 3)
    with pytest.raises(ValueError, match=r"\(2,\).*\(3, 3\)"):
        metrics.ranks(np.eye(3), np.array([0, 1]))


def test_image_without_caption_rejected():
    with pytest.raises(ValueError, match="image 2 has no caption"):
        metrics.retrieval_report(np.ones((3, 3)), np.array([0, 1, 1]))


def test_out_of_range_index_rejected():
    with pytest.raises(ValueError, match="out of range"):
        metrics.retrieval_report(np.eye(3), np.array([0, 1, 3]))
    with pytest.raises(ValueError, match="out of range"):
        metrics.ranks(np.eye(3), np.array([0, -1, 2]))
    with pytest.raises(ValueError, match="out of range"):
        metrics.tagging_report(np.eye(2), [np.array([0]), np.array([5])])


def test_empty_positive_set_rejected():
    with pytest.raises(ValueError, match=r"positives\[1\] is empty"):
        metrics.ranks(np.eye(2), [np.array([0]), np.array([], dtype=int)])
    with pytest.raises(ValueError, match="empty"):
        metrics.tagging_report(np.eye(2), [np.array([0]), []])


def test_k_below_one_rejected():
    with pytest.raises(ValueError, match="k must be >= 1"):
        metrics.retrieval_report(np.eye(2), np.arange(2), ks=(0, 1))
    with pytest.raises(ValueError, match="k must be >= 1"):
        metrics.tagging_report(np.eye(2), [[0], [1]], ks=(-1,))


def test_metrics_module_does_not_import_torch():
    code = "import sys, repro.scoring.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- CLI

def test_cli_evaluate_prints_report(tmp_path):
    np.save(tmp_path / "s.npy", np.array([[0.9, 0.1], [0.2, 0.8]]))
    np.save(tmp_path / "g.npy", np.array([0, 1]))
    out = subprocess.run([sys.executable, "-m", "repro", "evaluate", "--scores",
                          str(tmp_path / "s.npy"), "--image-of-caption", str(tmp_path / "g.npy"),
                          "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    import json
    assert json.loads(out.stdout)["t2i_R@1"] == 100.0


@pytest.mark.parametrize("case", ["missing", "garbage", "shape"])
def test_cli_evaluate_bad_files_exit_2(tmp_path, case, capsys):
    from conftest import call_main
    from repro import cli

    s, g = tmp_path / "s.npy", tmp_path / "g.npy"
    np.save(g, np.array([0, 1]))
    if case == "garbage":
        s.write_bytes(b"not numpy")
    elif case == "shape":
        np.save(s, np.ones((3, 2)))
    out = call_main(cli.main, ["evaluate", "--scores", str(s), "--image-of-caption", str(g)],
                    capsys)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "s.npy" in lines[0]


# ----------------------------------------------------------------------------- text clusters

def test_cluster_stats_by_hand_and_identical_texts_count_as_neither():
    # Two languages, two items, 2-d unit vectors at known angles.
    def u(deg):
        r = np.radians(deg)
        return [np.cos(r), np.sin(r)]

    en = np.array([u(0), u(90)])
    de = np.array([u(30), u(0)])   # de item 1 sits exactly where en item 0 sits
    c = lambda deg: float(np.cos(np.radians(deg)))  # noqa: E731
    st_all = metrics.cluster_stats({"en": en, "de": de})
    same, diff = [c(30), c(90)], [c(0), c(60)]
    assert st_all["same"] == pytest.approx(np.mean(same))
    assert st_all["diff"] == pytest.approx(np.mean(diff))
    assert st_all["separation"] == pytest.approx((np.mean(same) - np.mean(diff)) / np.std(diff))
    # en item 0 and de item 1 are the same text ("OK" in both): that pair counts as neither.
    st = metrics.cluster_stats({"en": en, "de": de}, {"en": [0, 1], "de": [2, 0]})
    assert st["same"] == pytest.approx(np.mean(same))
    assert st["diff"] == pytest.approx(c(60))
    # a same-item pair with identical text leaves the same-item mean too
    st2 = metrics.cluster_stats({"en": en, "de": de}, {"en": [0, 1], "de": [0, 3]})
    assert st2["same"] == pytest.approx(c(90))


@pytest.mark.parametrize("n_tags, n_true", [(1, 1), (4, 1), (5, 2), (6, 3), (6, 6)])
def test_chance_average_precision_is_the_mean_over_every_ranking(n_tags, n_true):
    """The closed form against the definition: the mean AP over all n_tags! orders of the
    vocabulary (the true tags are the first n_true)."""
    import itertools

    aps = []
    for order in itertools.permutations(range(n_tags)):
        ranks = np.sort([order.index(t) + 1 for t in range(n_true)])
        aps.append(np.mean(np.arange(1, n_true + 1) / ranks))
    assert metrics.chance_average_precision([n_true], n_tags)[0] == pytest.approx(np.mean(aps))


def test_per_image_average_precisions_are_the_reports_map():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(30, 40)).round(1)   # rounded: ties follow the stable rule
    tags = [rng.choice(40, size=int(rng.integers(1, 5)), replace=False) for _ in range(30)]
    ap = metrics.average_precisions(scores, tags)
    assert ap.shape == (30,) and np.all((ap > 0) & (ap <= 1))
    assert 100 * ap.mean() == pytest.approx(metrics.tagging_report(scores, tags)["mAP"])
