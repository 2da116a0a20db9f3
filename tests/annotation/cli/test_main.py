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


def test_proposals_builds_resumes_and_reports_bad_sources(tmp_path, capsys):
    import json

    import numpy as np
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(
        images / "a.png"
    )
    out = tmp_path / "out"
    args = [
        "proposals",
        str(images),
        "--out",
        str(out),
        "--backbone",
        "tiny-effnet",
        "--no-progress",
    ]
    assert cli.main(args) == 0
    assert "1 trees built" in capsys.readouterr().out
    assert cli.main(args) == 0
    assert "1 already done" in capsys.readouterr().out
    coco = json.loads((out / "proposals.json").read_text())
    assert coco["images"][0]["file_name"] == "a.png" and coco["annotations"]
    assert cli.main(["proposals", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "cannot read" in capsys.readouterr().err
