"""``python -m repro compare``: identical folders, shifts within the seed spread, real shifts."""

import json
import math
import subprocess
import sys

import pytest
from scipy import stats as sps

from repro.compare import compare, format_summary, welch_p
from repro.errors import ReproError


def _folder(path, rows, seeds=5, extra=""):
    path.mkdir()
    (path / "manifest.json").write_text(json.dumps({"seeds": list(range(seeds))}))
    lines = ["language,A mean,A std,note"] + [f"{l},{m:.4f},{s:.4f},x" for l, m, s in rows]
    (path / "t.csv").write_text("\n".join(lines) + "\n")
    (path / "t.md").write_text("table" + extra)
    return path


def test_welch_p_matches_scipy():
    # summary statistics in, the same p as scipy's Welch test on the raw samples
    a, b = [10.0, 11.0, 12.0, 13.0, 14.0], [12.0, 12.5, 14.0, 15.0, 17.0]
    ma, sa = sum(a) / 5, math.sqrt(sum((x - 12) ** 2 for x in a) / 4)
    mb = sum(b) / 5
    sb = math.sqrt(sum((x - mb) ** 2 for x in b) / 4)
    ref = sps.ttest_ind(a, b, equal_var=False).pvalue
    assert welch_p(ma, sa, 5, mb, sb, 5) == pytest.approx(ref)
    assert welch_p(1.0, 0.0, 5, 1.0, 0.0, 5) == 1.0 and welch_p(1.0, 0.0, 5, 1.1, 0.0, 5) == 0.0


def test_identical_and_within_spread_and_shifted(tmp_path):
    base = [("en", 20.0, 1.0), ("de", 12.0, 0.5)]
    old = _folder(tmp_path / "old", base)
    same = _folder(tmp_path / "same", base)
    s = compare(old, same)
    assert s["ok"] and len(s["identical"]) == 2 and s["cells_compared"] == 0
    near = _folder(tmp_path / "near", [("en", 20.6, 1.1), ("de", 12.2, 0.6)], extra=" ")
    s = compare(old, near)
    assert s["ok"] and s["cells_compared"] == 2 and s["differing"] == ["t.csv", "t.md"]
    lines = format_summary(s)
    assert lines[-1] == "compare: OK" and any(l.startswith("worst cell: t.csv / ") for l in lines)
    far = _folder(tmp_path / "far", [("en", 20.0, 1.0), ("de", 16.0, 0.5)])
    s = compare(old, far)
    assert not s["ok"] and [(c.row, c.column) for c in s["failed"]] == [("de", "A")]
    assert s["worst"].row == "de"


def test_compare_cli_exit_codes_and_errors(tmp_path):
    old = _folder(tmp_path / "old", [("en", 20.0, 1.0)])
    far = _folder(tmp_path / "far", [("en", 30.0, 1.0)])
    run = lambda *a: subprocess.run([sys.executable, "-m", "repro", "compare", *a],  # noqa: E731
                                    capture_output=True, text=True)
    out = run(str(old), str(old))
    assert out.returncode == 0 and "compare: OK" in out.stdout
    out = run(str(old), str(far))
    assert out.returncode == 1 and "FAILED: t.csv / en / A" in out.stdout
    out = run(str(old), str(tmp_path / "nope"))
    assert out.returncode == 2 and out.stderr.startswith("error: ") and "no such folder" in out.stderr
    (far / "t.csv").unlink()
    with pytest.raises(ReproError, match="t.csv: missing"):
        compare(old, far)
