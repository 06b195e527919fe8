"""Notebooks are committed without outputs and call the package (thin)."""

import ast
import importlib
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _code(path) -> str:
    nb = json.loads(path.read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_package_name_a_notebook_uses_exists(path):
    """A renamed or removed function breaks a notebook only when ``reproduce`` executes it, at
    the end of the grid: every ``from repro.X import Y`` and every ``Y.name`` the code cells use
    resolves now (and every cell parses)."""
    tree = ast.parse(_code(path))
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("repro"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                name = alias.name
                bound[alias.asname or name] = (getattr(module, name) if hasattr(module, name)
                                               else importlib.import_module(f"{node.module}.{name}"))
    assert bound, f"{path.name}: uses nothing of the package"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in bound:
            assert hasattr(bound[node.value.id], node.attr), \
                f"{path.name}: {node.value.id}.{node.attr} does not exist"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    # a cell without an id gets a random one at every execution: the executed copy would differ
    assert all("id" in cell for cell in nb["cells"]), path.name
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, path.name
            assert len(cell["source"] if isinstance(cell["source"], str)
                       else "".join(cell["source"])) < 600, "notebooks stay thin"
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "from repro.experiments import reproduce" in code and "notebook_grid" in code
