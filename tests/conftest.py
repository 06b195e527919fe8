import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_or_skip(name: str) -> Path:
    """A folder of ../shared/data; in CI (CI=true) its absence is a failure, not a skip."""
    path = SHARED / name
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing in CI")
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture
def xtd10_dir() -> Path:
    return shared_or_skip("xtd10")


@pytest.fixture
def cldr_dir() -> Path:
    return shared_or_skip("cldr41")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("xlir-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(session_cache, monkeypatch):
    """No test reads or writes the user's cache (tests share one, so tower features are
    computed once per session); no test reads the user's XTD10 setting."""
    monkeypatch.setenv("XLIR_CACHE", str(session_cache))
    monkeypatch.delenv("XLIR_XTD10_DIR", raising=False)
