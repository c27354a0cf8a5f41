"""`loraledger bench`: one subcommand per benchmark, listed with its line, every argument (even --help) passed
to the benchmark's own argparse."""

from __future__ import annotations

import pathlib

from typer.testing import CliRunner

from node.cli import app
from node.commands.bench import BENCHES

runner = CliRunner()


def test_every_benchmark_is_listed_with_its_line() -> None:
    result = runner.invoke(app, ["bench", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name, (_, line) in BENCHES.items():
        assert f" {name} " in result.output
        assert line in result.output
    assert " all " in result.output


def test_arguments_reach_the_benchmark_argparse() -> None:
    result = runner.invoke(app, ["bench", "rewards", "--help"])
    assert result.exit_code == 0, result.output
    assert "--baseline-records" in result.output  # the benchmark's own option, not typer's help
    result = runner.invoke(app, ["bench", "rewards", "--bogus"])
    assert result.exit_code == 2


def test_bench_node_refuses_bad_model_and_adapter_dirs(tmp_path: pathlib.Path) -> None:
    result = runner.invoke(app, ["bench", "node", "--model-dir", "/nonexistent/model"])
    assert result.exit_code == 2
    assert "--model-dir /nonexistent/model is not a directory" in result.output
    result = runner.invoke(app, ["bench", "node", "--adapter-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--adapter-dir needs --model-dir" in result.output
