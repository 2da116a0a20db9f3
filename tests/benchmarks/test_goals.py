"""``maskwright bench <topic> --check``: the goal table and the check on given figures, and one
run of a fake topic end to end (FAIL on stderr, JSON still the last line of stdout, status 1)."""

from __future__ import annotations

import json

import pytest

import benchmarks
from annotation.cli import main as cli
from benchmarks import goals
from benchmarks.goals import GOALS, Goal, check, measured_device, missed

FAKE = (
    Goal("click_p50_s", "<=", 0.3, "fake: click", "cpu", True),
    Goal("miou", ">=", 50, "fake: quality"),
    Goal("ours", ">=", "peer", "fake: beats its peer"),
)


def fake_bench(*, quick: bool = False, device: str | None = None) -> dict:
    """A bench of the test: one human-readable line, then figures that miss the click goal."""
    print(f"fake bench, quick={quick}, device={device}")
    return {"click_p50_s": 0.9, "miou": 55.0, "ours": 0.7, "peer": 0.6}


@pytest.fixture
def fake_topic(monkeypatch):
    monkeypatch.setitem(benchmarks.TOPICS, "fake", (f"{__name__}:fake_bench", "library"))
    monkeypatch.setitem(GOALS, "fake", FAKE)


def test_every_goal_names_a_topic_and_a_valid_bound():
    for topic, table in GOALS.items():
        assert topic in benchmarks.TOPICS, topic
        assert table, topic
        for goal in table:
            assert goal.op in ("<=", ">="), goal
            assert goal.device in (None, "cpu", "cuda"), goal
            assert goal.why.strip(), goal


def test_the_issues_goals_for_m2n2():
    table = {g.key: g for g in GOALS["m2n2"]}
    assert (table["click_p50_s"].op, table["click_p50_s"].value) == ("<=", 0.3)
    assert (table["set_image_s"].op, table["set_image_s"].value) == ("<=", 2.0)
    assert table["click_p50_s"].device == table["set_image_s"].device == "cpu"


def test_pass_fail_and_missing(fake_topic):
    lines = check("fake", {"click_p50_s": 0.25, "miou": 40}, quick=False, device="cpu")
    assert lines == [
        "PASS click_p50_s=0.25 (goal <= 0.3: fake: click)",
        "FAIL miou=40 (goal >= 50: fake: quality)",
        "MISSING ours (goal >= peer=null: fake: beats its peer)",
    ]
    assert missed(lines)
    assert not missed(lines[:1])


def test_bounds_are_inclusive_and_a_peer_figure_is_a_bound(fake_topic):
    figures = {"click_p50_s": 0.3, "miou": 50, "ours": 0.61, "peer": 0.6}
    assert not missed(check("fake", figures, quick=False, device="cpu"))
    lines = check("fake", {**figures, "ours": 0.5}, quick=False, device="cpu")
    assert lines[2] == "FAIL ours=0.5 (goal >= peer=0.6: fake: beats its peer)"
    lines = check("fake", {**figures, "peer": None}, quick=False, device="cpu")
    assert lines[2].startswith("MISSING peer ")


def test_figures_that_are_not_numbers_fail(fake_topic):
    figures = {"click_p50_s": float("nan"), "miou": "skipped", "ours": 1, "peer": 0}
    lines = check("fake", figures, quick=False, device="cpu")
    assert lines[0].startswith("FAIL click_p50_s=NaN not a number")
    assert lines[1].startswith('FAIL miou="skipped" not a number')
    assert lines[2].startswith("PASS ours=1 ")


def test_booleans_compare_as_numbers():
    figures = {"worker_restarted": False, "click_after_kill_s": 3.0}
    lines = check("faults", figures, quick=False, device="cpu")
    assert lines[0].startswith("FAIL worker_restarted=false (goal >= 1:")
    assert lines[1].startswith("PASS click_after_kill_s=3.0 (goal <= 10:")
    assert lines[2].startswith("MISSING stale_masks (goal <= 0:")


def test_device_filter(fake_topic):
    figures = {"click_p50_s": 0.9, "miou": 55, "ours": 1, "peer": 0}
    on_cuda = check("fake", figures, quick=False, device="cuda")
    assert [line.split()[1].split("=")[0] for line in on_cuda] == ["miou", "ours"]
    assert not missed(on_cuda)
    assert len(check("fake", figures, quick=False, device=None)) == 2  # unknown: no CPU goal
    assert missed(check("fake", figures, quick=False, device="cpu"))


def test_quick_filter(fake_topic):
    figures = {"click_p50_s": 0.1, "miou": 1.0}  # quality misses, but not on a quick run
    assert check("fake", figures, quick=True, device="cpu") == [
        "PASS click_p50_s=0.1 (goal <= 0.3: fake: click)"
    ]
    assert len(check("fake", figures, quick=False, device="cpu")) == 3


def test_a_topic_without_goals_checks_nothing():
    assert check("api", {"list_p50_ms": 12.0}, quick=False, device="cpu") == []


def test_measured_device(monkeypatch):
    assert measured_device("m2n2", "cuda:0") == "cuda"
    assert measured_device("salt", None) == "cpu"  # salt and mis stay on CPU unless told
    assert measured_device("ws", None) == "cpu"
    assert goals.CUDA_WHEN_PRESENT <= set(benchmarks.TOPICS)


def test_run_bench_check_fails_and_keeps_json_last(fake_topic, capsys):
    assert benchmarks.run_bench("fake", device="cpu", check=True) == 1
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert lines[0] == "fake bench, quick=False, device=cpu"
    assert json.loads(lines[-1]) == fake_bench()
    assert "FAIL click_p50_s=0.9 (goal <= 0.3: fake: click)" in err.splitlines()
    assert "PASS miou=55.0 (goal >= 50: fake: quality)" in err.splitlines()


def test_run_bench_without_check_is_unchanged(fake_topic, capsys):
    assert benchmarks.run_bench("fake", device="cpu") == 0
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1]) == fake_bench()
    assert err == ""


def test_run_bench_check_passes_when_goals_hold(fake_topic, capsys):
    # on CUDA the CPU click goal does not apply; the rest hold
    assert benchmarks.run_bench("fake", device="cuda", check=True) == 0
    assert "FAIL" not in capsys.readouterr().err


def test_cli_passes_check_through(fake_topic, capsys):
    assert cli.main(["bench", "fake", "--device", "cpu", "--check"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["click_p50_s"] == 0.9
    assert "FAIL click_p50_s=0.9" in err
    assert cli.main(["bench", "fake", "--device", "cpu"]) == 0
