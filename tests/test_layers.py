"""The declared layers of repro/ hold (import-linter, pyproject.toml): packages by concern, each
importing only those below it; inside a package, modules in their declared order."""

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "repro"


def _contracts() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {c["name"]: c for c in config["tool"]["importlinter"]["contracts"]}


def _layer_names(contract) -> set:
    return {part.strip() for layer in contract["layers"] for part in layer.replace(":", "|").split("|")}


def test_import_layers_contracts_are_kept():
    exe = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(exe), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "repro packages KEPT" in out.stdout and "0 broken" in out.stdout


def test_every_package_and_top_level_module_is_a_declared_layer():
    declared = _layer_names(_contracts()["repro packages"])
    packages = {f"repro.{p.name}" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    modules = {f"repro.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert packages and not (packages | modules) - declared, (packages | modules) - declared


def test_the_architecture_is_in_the_folders():
    """At the top only the entry points and the config; everything else in a package."""
    assert {p.stem for p in PACKAGE.glob("*.py")} == {"__init__", "__main__", "cli", "config"}


def _imports_within(package: Path) -> set:
    """Names of the sibling modules that the modules of ``package`` import."""
    prefix = f"repro.{package.name}."
    used = set()
    for f in package.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith(prefix):
                    used.add(node.module[len(prefix):])
                elif node.module == prefix[:-1]:
                    used |= {a.name for a in node.names}
    return used


def test_modules_that_import_siblings_are_in_their_package_contract():
    contracts = {c["containers"][0]: c for c in _contracts().values() if "containers" in c}
    for package in (p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()):
        used = _imports_within(package)
        if not used:
            continue
        name = f"repro.{package.name}"
        assert name in contracts, f"{name}: its modules import each other but it has no contract"
        assert used <= _layer_names(contracts[name]), (name, used - _layer_names(contracts[name]))


def test_the_noxfile_names_files_that_exist():
    """Paths the noxfile builds with os.path.join(<here>, "repro", ...) point at real files
    (it loads the numerics pins by path, before any session has a virtualenv)."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    paths = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "os.path.join":
            parts = [a.value for a in node.args if isinstance(a, ast.Constant)]
            if parts and parts[0] == "repro":
                paths.append(ROOT.joinpath(*parts))
    assert paths and all(p.is_file() for p in paths), paths
