"""``python -m repro reproduce``: every option documented with its default; only the default
run rewrites README.md."""

from pathlib import Path

import pytest

from repro.cli import build_parser
from repro.design.grid import SEEDS
from repro.experiments.reproduce import readme_refusal


def test_every_reproduce_option_says_what_it_does_and_its_default():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "cmd")
    rep = sub.choices["reproduce"]
    options = [a for a in rep._actions if a.option_strings and a.dest != "help"]
    assert {"--out", "--runs", "--seeds", "--set", "--jobs", "--update-readme"} <= {
        a.option_strings[0] for a in options}
    for a in options:
        assert a.help and len(a.help) > 15, a.option_strings
        if not a.option_strings[0] in ("--fresh", "--no-notebooks"):  # flags: off by default
            assert "default" in a.help, a.option_strings
    assert "--update-readme" in rep.format_help()


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
