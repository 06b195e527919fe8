"""The declared layers of repro/ hold (import-linter, pyproject.toml) and every module stays
small."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_layers_contract_is_kept():
    exe = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(exe), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "repro layers KEPT" in out.stdout and "0 broken" in out.stdout


def test_every_module_is_declared_in_a_layer():
    text = (ROOT / "pyproject.toml").read_text()
    modules = {p.stem for p in (ROOT / "repro").glob("*.py") if p.stem != "__init__"}
    missing = [m for m in modules if f"repro.{m}" not in text]
    assert not missing, f"modules without a layer: {missing}"


def test_no_module_over_400_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "repro").glob("*.py")}
    assert max(sizes.values()) <= 400, {k: v for k, v in sizes.items() if v > 400}
