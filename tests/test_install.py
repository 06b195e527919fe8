"""The README's install path, in a fresh virtualenv: the package installed from a copy of this
clone (its tracked and untracked, not ignored, files) runs ``xlir-repro --help`` and the
README's one-run, search, tag and Python examples as written (the run trained for one epoch,
not 113).

Realistic offline: the fresh virtualenv reaches this interpreter's installed dependencies
(PyTorch and the rest) through a ``.pth`` file instead of downloading them again, and the
package itself is installed without its dependencies and without build isolation; what is
tested is the install of this clone (its files, package data and console script) and the
README's commands. Marked ``install`` (``-m "not install"`` leaves it out)."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from repro.data import emoji

ROOT = Path(__file__).resolve().parents[1]


def _readme_lines(lang: str) -> list[str]:
    """The lines of the README's ``lang`` code blocks (comments kept)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def _example(word: str) -> str:
    """The README's one bash line that runs ``python -m repro WORD --run``/``--out``."""
    [line] = [l for l in _readme_lines("bash") if l.startswith(f"python -m repro {word} ")
              and ("--run " in l or word == "train" and "--out runs/x" in l)]
    return line


def _out_of(line: str) -> str:
    words = shlex.split(line, comments=True)
    return words[words.index("--out") + 1]


def test_the_readme_search_and_tag_use_the_run_its_one_run_example_writes():
    run = _out_of(_example("train"))
    for word in ("search", "tag", "serve"):
        words = shlex.split(_example(word), comments=True)
        assert words[words.index("--run") + 1] == run, word
    assert f'app.load("{run}")' in "\n".join(_readme_lines("python"))


def _copy_clone(dest: Path) -> Path:
    """This clone's files as a fresh clone (with uncommitted edits) would have them."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the clone's files are unknown")
    for name in filter(None, listed.stdout.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _fresh_virtualenv(where: Path) -> Path:
    """A new virtualenv (no pip of its own) that sees this interpreter's site-packages; its
    bin folder."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    [site] = where.glob("lib/python3*/site-packages")
    paths = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "parent-site-packages.pth").write_text("\n".join(paths) + "\n")
    return where / "bin"


@pytest.mark.install
def test_a_fresh_virtualenv_runs_the_readme(tmp_path, mini_features, monkeypatch):
    clone = _copy_clone(tmp_path / "clone")
    bin_dir = _fresh_virtualenv(tmp_path / "venv")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install",
                    "-q", "--no-deps", "--no-build-isolation", "--no-index", str(clone)],
                   check=True, capture_output=True)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("VIRTUAL_ENV", str(bin_dir.parent))

    def sh(line: str) -> subprocess.CompletedProcess:
        out = subprocess.run(["bash", "-c", line], cwd=work, capture_output=True, text=True)
        assert out.returncode == 0, (line, out.stderr[-2000:])
        return out

    where = sh("python -c 'import repro; print(repro.__file__)'").stdout.strip()
    assert where.startswith(str(tmp_path / "venv")), where  # the installed copy, not this tree
    assert "search" in sh("xlir-repro --help").stdout
    sh(_example("train") + " --set epochs=1")
    image = str(emoji.emoji_image_paths(emoji.load_emoji())[0])
    found = sh(_example("search")).stdout.splitlines()
    assert found[0].startswith("model: runs/x (run; arm M3") and "500 images" in found[1]
    assert "query 'un chat qui rit' (fr): top 5" in found
    tagged = sh(_example("tag").replace("IMAGE.png", shlex.quote(image))).stdout
    assert re.search(r"^  rank +pl +ja +tr$", tagged, flags=re.M), tagged
    api = "\n".join(_readme_lines("python")) + "\nprint(len(hits), hits[0].name_en)"
    printed = sh(f"python -c {shlex.quote(api)}").stdout.split()
    assert printed[0] == "5"
