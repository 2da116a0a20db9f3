"""``maskwright bench sam`` on tiny random models (the real shapes take minutes on a CPU): the
bench's own code path, every architecture key in every map of the JSON, and a decoder call per
timed prompt (a remembered answer would time nothing). No timing is asserted."""

from __future__ import annotations

import json

import pytest

from benchmarks import sam as bench
from benchmarks.goals import check
from inference.methods.sam.text import TextFinder
from inference.methods.sam.text_tiny import save_tiny_sam3
from inference.methods.sam.variants import load_variant

ARCHITECTURES = (("sam", "vit-b"), ("sam2", "hiera-tiny"), ("sam3", "sam3"))


class Counting:
    """A loader of tiny models that counts each model's decoder calls (forward with
    ``image_embeddings``, i.e. not the image encoder)."""

    def __init__(self) -> None:
        self.decodes: dict[str, int] = {}

    def __call__(self, family: str, variant: str, device: str):
        loaded = load_variant(family, "tiny", device)
        key = f"{family}/{variant}"
        self.decodes[key] = 0

        def hook(module, args, kwargs):
            if kwargs.get("image_embeddings") is not None:
                self.decodes[key] += 1

        loaded.model.register_forward_pre_hook(hook, with_kwargs=True)
        return loaded


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory):
    return save_tiny_sam3(tmp_path_factory.mktemp("bench-sam3") / "sam3")


def test_the_bench_prints_a_line_per_architecture_and_the_json_maps(text_folder, capsys):
    loader = Counting()
    finder = TextFinder.from_folder(text_folder)
    figures = bench.run(
        device="cpu",
        loader=loader,
        text_loader=lambda: (finder.model, finder.processor),
        architectures=ARCHITECTURES,
    )
    keys = {f"{family}/{variant}/cpu" for family, variant in ARCHITECTURES}
    for name in ("set_image_s", "prompt_ms", "params_m", "build_s"):
        assert set(figures[name]) == keys | {"sam3/text/cpu"}, name
    assert set(figures["box_ms"]) == keys
    for name in ("set_image_s", "prompt_ms", "box_ms"):
        assert all(value > 0 for value in figures[name].values()), name
    assert "sam2_hiera_large_cuda_prompt_ms" not in figures  # no CUDA measured
    assert json.loads(json.dumps(figures)) == figures

    lines = capsys.readouterr().out.splitlines()
    for key in (*(f"{f}/{v}" for f, v in ARCHITECTURES), "sam3/text"):
        assert sum(line.startswith(key) for line in lines) == 1, key
    # the warm-up's click sequence (1 to 5 clicks) and box, then 3 timed replays of both
    for key, decodes in loader.decodes.items():
        assert decodes % 4 == 0 and 1 <= decodes // 4 - 1 <= 5, (key, decodes)


def test_quick_runs_the_smallest_of_sam_and_sam2_and_no_text(capsys):
    loader = Counting()
    figures = bench.run(quick=True, device="cpu", loader=loader, text_loader=None)
    assert set(figures["prompt_ms"]) == {"sam/vit-b/cpu", "sam2/hiera-tiny/cpu"}
    assert set(loader.decodes) == {"sam/vit-b", "sam2/hiera-tiny"}


def test_the_photo_is_1024_by_768_with_an_object():
    image, gt = bench.photo()
    assert image.shape == (768, 1024, 3) and image.dtype.name == "uint8"
    assert gt.shape == (768, 1024) and 0 < gt.mean() < 1


def test_the_h100_goal_applies_to_cuda_figures_only():
    figures = {"sam2_hiera_large_cuda_prompt_ms": 9.5}
    (line,) = check("sam", figures, quick=False, device="cuda")
    assert line.startswith("PASS sam2_hiera_large_cuda_prompt_ms=9.5 (goal <= 15: issue 20")
    assert check("sam", figures, quick=False, device="cpu") == []
    assert check("sam", {}, quick=False, device="cuda")[0].startswith("MISSING")


def test_the_topic_runs_through_maskwright_bench(monkeypatch, capsys):
    """``maskwright bench sam --quick --device cpu`` (tiny models in place of the real shapes):
    a line per architecture, then the JSON as the last line of stdout."""
    from benchmarks import run_bench
    from inference.methods.sam import shapes

    monkeypatch.setattr(shapes, "random_loaded", Counting())
    assert run_bench("sam", quick=True, device="cpu") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("sam/vit-b") and lines[2].startswith("sam2/hiera-tiny")
    figures = json.loads(lines[-1])
    assert set(figures["set_image_s"]) == {"sam/vit-b/cpu", "sam2/hiera-tiny/cpu"}
