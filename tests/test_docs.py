"""The README is an entry point and every page under docs/ holds up: every command it names
exists (its ``--help`` answers), every relative link reaches a file, nothing sends a reader
outside the repository for the method, and the README's answers are the committed results."""

import ast
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
COMMAND = re.compile(r"python -m (repro(?:\.bench)?) ([a-z][a-z0-9-]*)|nox -s ([a-z][a-z0-9-]*)")


def _commands() -> set:
    found = set()
    for page in PAGES:
        for m in COMMAND.finditer(page.read_text(encoding="utf-8")):
            found.add(("nox", m.group(3)) if m.group(3) else (m.group(1), m.group(2)))
    return found


def _nox_sessions() -> set:
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    return {f.name for f in tree.body if isinstance(f, ast.FunctionDef)
            and any("session" in ast.unparse(d) for d in f.decorator_list)}


def test_the_readme_answers_are_the_committed_results(tmp_path):
    """The README's generated block is what ``reproduce`` writes from the committed
    paper_tables/ (its findings and the figures registered for the README): a README whose
    answers lag the tables, or a writer that would change them, fails here."""
    from repro.report import outputs

    tables = tmp_path / "paper_tables"
    tables.mkdir()
    shutil.copy(ROOT / "paper_tables" / "findings.md", tables)
    for o in outputs.OUTPUTS:
        if o.readme and (ROOT / "paper_tables" / o.readme).is_file():
            shutil.copy(ROOT / "paper_tables" / o.readme, tables)
    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", readme)
    assert outputs.update_readme(tables, readme)
    assert readme.read_text(encoding="utf-8") == (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_pages_name_the_main_commands():
    found = _commands()
    assert {("nox", "reproduce"), ("nox", "tests"), ("repro", "search"), ("repro", "train"),
            ("repro", "evaluate"), ("repro.bench", "defaults")} <= found, found


@pytest.mark.parametrize("module,name", sorted(_commands()))
def test_every_command_of_the_pages_exists(module, name, capsys):
    if module == "nox":
        assert name in _nox_sessions(), f"nox -s {name}: no such session in noxfile.py"
        return
    if module == "repro":
        from repro.cli import build_parser
    else:
        from repro.bench.suite import build_parser
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([name, "--help"])
    assert exit_.value.code == 0, f"python -m {module} {name}: not a command"
    assert "usage:" in capsys.readouterr().out


def test_relative_links_reach_files_and_nothing_points_outside():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert "../shared" not in text and "shared/docs" not in text, page
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)}: {target}"
