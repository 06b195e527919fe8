"""What a person reads first: ``--help`` (plain text, the name the command was invoked by)
and the training's epoch line (the metric that picks the evaluated epoch)."""

import subprocess
import sys

import pytest

from repro import cli
from repro.training.trainer import epoch_line


def test_help_shows_no_rest_markup(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser("xlir-repro").parse_args(["--help"])
    out = capsys.readouterr().out
    assert "`" not in out and ":mod:" not in out
    assert out.startswith("usage: xlir-repro") and "starting with error:" in " ".join(out.split())


@pytest.mark.parametrize("argv0,prog", [
    ("/venv/bin/xlir-repro", "xlir-repro"),
    ("/src/repro/__main__.py", "python -m repro"),
    ("-c", "python -m repro"),
])
def test_usage_names_how_the_command_was_invoked(argv0, prog):
    assert cli.prog_name(argv0) == prog


def test_python_dash_m_says_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "repro", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("usage: python -m repro")


def test_the_epoch_line_prints_the_metric_that_picks_the_best_epoch():
    line = epoch_line("M3", 13, 20, 0.4321, 151.25, 9, 160.5)
    assert line == ("M3 epoch 13/20: loss 0.4321, English validation R-sum 151.2 (best by "
                    "R-sum so far: epoch 9, 160.5)")
    assert "R@1" not in line
