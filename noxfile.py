"""Two sessions: ``nox -s tests`` (pytest) and ``nox -s reproduce`` (tables, figures, notebooks).

Both keep their virtualenv between runs (``reuse_venv``) and install everything themselves.
PyTorch is pinned to the build this project is tested with; set ``XLIR_TORCH`` to another
requirement string (e.g. ``"torch==2.9.1 torchvision==0.24.1"``) on other platforms.
"""

import os

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "virtualenv"

TORCH = os.environ.get("XLIR_TORCH", "torch==2.14.1 torchvision==0.29.1").split()
SHARED_XTD10 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared", "data", "xtd10")


def _env() -> dict:
    """Fixed hash seed; XTD10 from ../shared/data/xtd10 when present and nothing else is set."""
    env = {"PYTHONHASHSEED": "0"}
    if not os.environ.get("XLIR_XTD10_DIR") and os.path.isdir(SHARED_XTD10):
        env["XLIR_XTD10_DIR"] = os.path.normpath(SHARED_XTD10)
    return env


def _install(session: nox.Session) -> None:
    # torch first, pinned, so that no dependency resolves to another (multi-GB) build.
    session.install(*TORCH)
    session.install("-e", ".[test,notebooks]", *TORCH)


@nox.session(reuse_venv=True)
def tests(session: nox.Session) -> None:
    """Run the test suite (offline; reads ../shared/data when present)."""
    _install(session)
    session.run("pytest", *(session.posargs or ["-q"]), env=_env())


@nox.session(reuse_venv=True)
def reproduce(session: nox.Session) -> None:
    """Run the experiment grid, write paper_tables/, execute the notebooks.

    Arguments after ``--`` go to ``python -m repro reproduce`` (e.g. ``--profile paper``,
    ``--fresh``).
    """
    _install(session)
    session.run("python", "-m", "repro", "reproduce", *session.posargs, env=_env())
