"""The console command's dispatch: eval and test pass their arguments through untouched."""
from __future__ import annotations

import pytest

from annotation.cli import main as cli


def test_eval_passes_its_arguments_to_the_inference_cli(capsys):
    assert cli.main(["eval", "--help"]) == 0
    assert "--dataset" in capsys.readouterr().out
    assert cli.main(["eval", "--dataset", "/nonexistent", "--method", "opencv-grabcut"]) == 2


def test_test_passes_pytest_options_through(monkeypatch):
    seen = []
    monkeypatch.setattr("annotation.cli.testcmd.run_tests", lambda args: seen.append(args) or 0)
    assert cli.main(["test", "-q", "-k", "upload"]) == 0
    assert seen == [["-q", "-k", "upload"]]


def test_unknown_bench_topic_is_an_argument_error():
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "nope"])
    assert exc.value.code == 2
