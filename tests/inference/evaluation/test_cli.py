"""``maskwright eval`` end to end on tiny synthetic datasets, called as a function."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference import MaskResult, Predictor
from inference.evaluation.cli import main
from inference.registry import _BUILDERS, register_method


def write_disks(root: Path, n: int = 3, size: int = 64) -> Path:
    """Reddish disks of different sizes on bluish noise; masks 255 inside, 128 on the rim."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.ogrid[:size, :size]
    for k in range(n):
        radius = 12 + 4 * k
        d2 = (xx - size // 2 - k) ** 2 + (yy - size // 2) ** 2
        image = np.empty((size, size, 3), dtype=np.float32)
        image[:] = (40, 70, 160)
        image[d2 <= radius**2] = (200, 60, 50)
        image += rng.normal(0, 6, image.shape)
        rgb = np.clip(image, 0, 255).astype(np.uint8)
        Image.fromarray(rgb).save(root / "images" / f"disk{k}.png")
        mask = np.where(d2 <= (radius - 1) ** 2, 255, np.where(d2 <= (radius + 1) ** 2, 128, 0))
        Image.fromarray(mask.astype(np.uint8)).save(root / "masks" / f"disk{k}.png")
    return root


class HalfPredictor(Predictor):
    """A peer for --compare: the left half of the image, whatever the clicks."""

    def _set_image(self, image):
        pass

    def _predict(self, clicks):
        mask = np.zeros(self.image_size, dtype=bool)
        mask[:, : self.image_size[1] // 2] = True
        return MaskResult(mask=mask)


@pytest.fixture
def half_method():
    register_method("half-test")(lambda device="cpu", **kw: HalfPredictor())
    yield "half-test"
    _BUILDERS.pop("half-test")


def stable(summary: dict) -> dict:
    """The summary without wall-clock numbers."""
    drop = {"wall_seconds", "seconds_per_click"}

    def keep(d: dict) -> dict:
        return {k: v for k, v in d.items() if k not in drop}

    return json.loads(json.dumps(summary), object_hook=keep)


def test_single_protocol_writes_json_csv_png_and_repeats_exactly(tmp_path, capsys, half_method):
    data = write_disks(tmp_path / "disks")
    outs = []
    for run in ("a", "b"):
        out = tmp_path / f"out-{run}"
        code = main(
            [
                "--dataset",
                str(data),
                "--method",
                "opencv-grabcut",
                "--max-clicks",
                "3",
                "--compare",
                half_method,
                "--out",
                str(out),
                "--seed",
                "0",
            ]
        )
        assert code == 0
        outs.append(out)
    printed = capsys.readouterr()
    assert all(word in printed.out for word in ("NoC@85", "opencv-grabcut", "half-test"))
    assert "eval disks" in printed.err  # the progress bar

    summaries = [json.loads((o / "summary.json").read_text()) for o in outs]
    s = summaries[0]
    assert s["method"] == "opencv-grabcut" and s["protocol"] == "single" and s["num_samples"] == 3
    assert s["dataset_name"] == "disks" and s["seed"] == 0 and s["backbone"] is None
    m = s["metrics"]
    assert {"NoC@85", "NoC@90", "NoF@85", "NoF@90", "mIoU@k", "seconds_per_click"} <= set(m)
    assert list(m["mIoU@k"]) == ["1", "2", "3"] and m["mIoU@k"]["3"] > 0.85
    assert set(m["seconds_per_click"]) == {"p50", "mean"}
    assert s["compare"]["half-test"]["NoF@85"] == 3 and s["compare"]["half-test"]["NoC@85"] == 3
    assert stable(summaries[0]) == stable(summaries[1])

    with (outs[0] / "per_image.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["name"]) for r in rows] == [
        ("opencv-grabcut", "disk0"),
        ("opencv-grabcut", "disk1"),
        ("opencv-grabcut", "disk2"),
        ("half-test", "disk0"),
        ("half-test", "disk1"),
        ("half-test", "disk2"),
    ]
    assert {"NoC@85", "NoC@90", "iou@1", "iou@3"} <= set(rows[0])
    assert (outs[0] / "iou_vs_clicks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_multi_protocol_on_a_folder(tmp_path, capsys):
    data = write_disks(tmp_path / "disks", n=2)
    out = tmp_path / "out"
    code = main(
        [
            "--dataset",
            str(data),
            "--method",
            "opencv-grabcut",
            "--protocol",
            "multi",
            "--strategy",
            "worst",
            "--tau",
            "2",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    assert {"NCI", "NFO", "NFI", "mIoU"} <= set(s["metrics"])
    assert s["strategy"] == "worst" and s["tau"] == 2
    assert 1 <= s["metrics"]["NCI"] <= 2 and s["num_samples"] == 2
    assert "NCI" in capsys.readouterr().out
    assert (out / "per_image.csv").exists() and (out / "iou_vs_clicks.png").exists()


def test_default_out_folder_is_named_after_method_and_dataset(tmp_path, monkeypatch):
    data = write_disks(tmp_path / "disks", n=1)
    monkeypatch.chdir(tmp_path)
    argv = ["--dataset", str(data), "--method", "opencv-grabcut", "--max-clicks", "1"]
    argv.append("--no-progress")
    assert main(argv) == 0
    (made,) = (tmp_path / "eval-out").iterdir()
    assert made.name.startswith("opencv-grabcut-disks-") and (made / "summary.json").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "/nonexistent/data", "--method", "opencv-grabcut"], "does not exist"),
        (["--dataset", "{data}", "--method", "no-such-method"], "unknown method 'no-such-method'"),
        (["--dataset", "{data}"], "--method"),
        (["--dataset", "{data}", "--method", "x", "--protocol", "both"], "invalid choice"),
        (["--dataset", "{data}", "--method", "opencv-grabcut", "--limit", "0"], "--limit"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(tmp_path, capsys, argv, message):
    data = write_disks(tmp_path / "disks", n=1)
    argv = [a.replace("{data}", str(data)) for a in argv]
    assert main(argv + ["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "--dataset" in capsys.readouterr().out


def test_param_reaches_the_evaluated_method_only(tmp_path, capsys):
    data = write_disks(tmp_path / "disks", n=1)
    out = tmp_path / "out"
    argv = [
        "--dataset",
        str(data),
        "--method",
        "opencv-grabcut",
        "--max-clicks",
        "2",
        "--param",
        "probable_radius=12",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    assert main(argv[:-5] + ["--param", "no equals sign", "--out", str(tmp_path / "o2")]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(argv[:-5] + ["--param", "bogus=1", "--out", str(tmp_path / "o3")]) == 2


def test_a_peer_may_name_its_own_arguments(tmp_path, capsys):
    data = write_disks(tmp_path / "disks", n=1)
    out = tmp_path / "out"
    argv = ["--dataset", str(data), "--method", "opencv-grabcut", "--max-clicks", "2"]
    peer = "opencv-grabcut:probable_radius=12,iterations=1"
    assert main([*argv, "--compare", peer, "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "opencv-grabcut" and set(summary["compare"]) == {peer}
    bad = [*argv, "--compare", "opencv-grabcut:bogus=1", "--out", str(tmp_path / "o2")]
    assert main(bad) == 2
    assert "could not build" in capsys.readouterr().err


def test_a_peer_names_its_backbone_and_the_defaults_stand_beside_a_changed_method(
    tmp_path, monkeypatch
):
    """``--compare m2n2:backbone=X`` builds the peer on X (it used to collide with the
    evaluated method's backbone argument); ``--compare m2n2`` beside ``--method m2n2
    --backbone Y`` is the defaults' row, not dropped as a repeat."""
    from inference import registry

    real, calls = registry.build_predictor, []

    def spy(method, backbone=None, **kwargs):  # opencv-grabcut takes no backbone: recorded only
        calls.append((method, backbone, {k: v for k, v in kwargs.items() if k != "device"}))
        return real(method, **kwargs)

    monkeypatch.setattr(registry, "build_predictor", spy)
    data = write_disks(tmp_path / "disks", n=1)
    argv = ["--dataset", str(data), "--method", "opencv-grabcut", "--max-clicks", "2"]
    peer = "opencv-grabcut:backbone=peer-net,iterations=1"
    changed = [*argv, "--backbone", "own-net", "--compare", "opencv-grabcut", "--compare", peer]
    assert main([*changed, "--out", str(tmp_path / "o1"), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "o1" / "summary.json").read_text())
    assert set(summary["compare"]) == {"opencv-grabcut:defaults", peer}
    assert calls == [
        ("opencv-grabcut", "own-net", {}),
        ("opencv-grabcut", None, {}),
        ("opencv-grabcut", "peer-net", {"iterations": 1}),
    ]
    calls.clear()
    same = [*argv, "--compare", "opencv-grabcut", "--out", str(tmp_path / "o2"), "--no-progress"]
    assert main(same) == 0  # nothing changed: the same run twice is run once
    assert json.loads((tmp_path / "o2" / "summary.json").read_text()).get("compare", {}) == {}
    assert len(calls) == 1


def test_peer_arguments_may_hold_json_with_commas():
    from inference.evaluation.cli import _split_top_level

    assert _split_top_level('scorer=null,backbone_options={"stages":[2,4]}') == [
        "scorer=null",
        'backbone_options={"stages":[2,4]}',
    ]
    assert _split_top_level("") == [] and _split_top_level("a=1") == ["a=1"]


def test_prior_starts_each_object_from_its_degraded_ground_truth(tmp_path, capsys, half_method):
    """--prior: a refining method corrects the prior (its first click already beats starting
    from nothing); a method that does not refine starts from nothing, as without --prior."""
    data = write_disks(tmp_path / "disks", n=2)
    base = ["--dataset", str(data), "--max-clicks", "2", "--no-progress"]

    def run(*extra: str) -> dict:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        assert main([*base, *extra, "--out", str(out)]) == 0
        return json.loads((out / "summary.json").read_text())

    scratch = run("--method", "opencv-grabcut")
    refined = run("--method", "opencv-grabcut", "--prior", "part", "--compare", half_method)
    assert refined["prior"] == "part" and 0.3 < refined["prior_miou"] < 0.9
    first = refined["metrics"]["mIoU@k"]["1"]
    assert first >= scratch["metrics"]["mIoU@k"]["1"] - 1e-9
    assert "refined by opencv-grabcut, the others start from nothing" in capsys.readouterr().out
    alone = run("--method", half_method)
    assert refined["compare"][half_method]["mIoU@k"] == alone["metrics"]["mIoU@k"]
    assert main([*base, "--method", half_method, "--prior", "bogus"]) == 2
    bad = [*base, "--method", half_method, "--protocol", "multi", "--prior", "part"]
    assert main(bad) == 2


def test_degraded_priors():
    from inference.evaluation.priors import degraded

    gt = np.zeros((50, 50), bool)
    gt[10:40, 10:30] = True
    part = degraded(gt, "part")
    assert part[10:27].sum() == gt[10:27].sum() and not part[28:].any()
    coarse = degraded(gt, "coarse")
    assert (coarse >= gt).all() and coarse.sum() > gt.sum()
    assert not degraded(np.zeros((4, 4), bool), "coarse").any()
    with pytest.raises(ValueError, match="unknown prior"):
        degraded(gt, "blur")
