"""``python -m repro reproduce``: the plain command is the default run, each option's help states
its real default; only the default run rewrites README.md."""

import inspect
from pathlib import Path

import pytest

from repro.cli import build_parser, main
from repro.design import SEEDS
from repro.experiments.reproduce import readme_refusal
from repro.experiments.reproduce import reproduce as reproduce_fn


def test_the_plain_command_is_the_default_run(tmp_path, monkeypatch):
    """``python -m repro reproduce`` without options calls reproduce() with its own defaults:
    the design's seeds (so the default run is the one that updates the README), and no option
    whose default differs between the command and the function."""
    from repro.experiments import reproduce

    called = {}
    monkeypatch.setattr(reproduce, "reproduce", lambda **kw: called.update(kw))
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce"]) == 0
    defaults = {name: p.default for name, p in inspect.signature(reproduce_fn).parameters.items()}
    assert set(called) == set(defaults), set(called) ^ set(defaults)
    for name, value in called.items():
        if isinstance(value, list):
            value = tuple(value)
        assert value == defaults[name], (name, value, defaults[name])
    assert readme_refusal(called["update_readme"], called["out"], called["seeds"],
                          called["sets"]) is None


def test_each_reproduce_option_help_states_its_real_default():
    """Where an option has a value by default, its help names that value (with the word
    "default"): changing a default without its help fails here."""
    sub = next(a for a in build_parser()._actions if a.dest == "cmd")
    for a in sub.choices["reproduce"]._actions:
        if not a.option_strings or a.dest == "help" or a.default in (None, False, []):
            continue
        shown = " ".join(map(str, a.default)) if isinstance(a.default, list) else str(a.default)
        assert "default" in a.help and shown in a.help, (a.option_strings[0], shown, a.help)


@pytest.mark.parametrize("mode, out, seeds, sets, allowed", [
    ("auto", "paper_tables", SEEDS, (), True),
    ("auto", "/tmp/x", SEEDS, (), False),
    ("auto", "paper_tables", (0,), (), False),
    ("auto", "paper_tables", SEEDS, ("epochs=1",), False),
    ("no", "paper_tables", SEEDS, (), False),
    ("yes", "/tmp/x", (0,), ("epochs=1",), True),
])
def test_only_the_default_run_updates_the_readme(mode, out, seeds, sets, allowed):
    why = readme_refusal(mode, Path(out), seeds, sets)
    assert (why is None) == allowed
    if why is not None:
        assert why  # a reason to print


def test_worker_env_gives_a_shell_the_pins_and_one_thread():
    """``eval "$(python -m repro worker-env)"`` before ``dask worker``: a worker process then
    loads numpy and torch with this machine's kernel pins and one thread per pool."""
    import subprocess
    import sys

    from repro.core import numerics, parallel

    script = (f'eval "$({sys.executable} -m repro worker-env)" && {sys.executable} -c '
              '"import json, os; print(json.dumps(dict(os.environ)))"')
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert out.returncode == 0, out.stderr
    import json

    env = json.loads(out.stdout)
    for key, value in {**numerics.wanted(), **parallel.SINGLE_THREAD_ENV}.items():
        assert env[key] == value, key
