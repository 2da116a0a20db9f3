"""A method declares that it finds objects by text (``MethodInfo.text_finder``) and the registry
builds its finder by name: SAM 3's, from the checkpoint its backbone names on local disk (a
tiny random one here), gives exactly what :class:`TextFinder` on that folder gives."""

from __future__ import annotations

import numpy as np
import pytest

from inference import MethodInfo, build_text_finder, method_info, text_finders
from inference.methods.sam.text import TextFinder
from inference.methods.sam.text_tiny import save_tiny_sam3
from inference.weights import WEIGHTS_DIR_ENV, WeightsNotFound
from tests.pyrun import run_python


@pytest.fixture(scope="module")
def weights_root(tmp_path_factory):
    """A weights folder where ``facebook/sam3`` resolves to a tiny random SAM 3."""
    root = tmp_path_factory.mktemp("weights")
    save_tiny_sam3(root / "facebook--sam3")
    return root


def test_the_metadata_says_who_finds_by_text_without_torch():
    code = (
        "import sys, inference\n"
        "finders = inference.text_finders()\n"
        "print([(i.name, i.text_finder, i.as_dict()['finds_text']) for i in finders],"
        " inference.method_info('sam').as_dict()['finds_text'], 'torch' in sys.modules)\n"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "[('sam3', 'inference.methods.sam.text:build_text_finder', True)] False False"
    )
    assert [i.name for i in text_finders()] == ["sam3"]


def test_a_text_finder_path_names_module_and_function():
    with pytest.raises(ValueError, match="module:function"):
        MethodInfo("bad", "Bad", ("click",), text_finder="just_a_module")


def test_a_method_without_one_is_refused_by_name():
    with pytest.raises(ValueError, match="'m2n2' finds nothing by text; those that do: sam3"):
        build_text_finder("m2n2")
    with pytest.raises(KeyError, match="unknown method 'nope'"):
        build_text_finder("nope")


def test_sam3_builds_from_its_backbone_s_checkpoint_and_finds(weights_root, monkeypatch):
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(weights_root))
    assert method_info("sam3").backbones == ("sam3",)
    finder = build_text_finder("sam3", backbone="sam3", device="cpu")
    assert isinstance(finder, TextFinder)
    image = np.random.default_rng(3).integers(0, 256, (45, 61, 3), dtype=np.uint8)
    finder.set_image(image)
    found = finder.find("bird", threshold=0.0, max_instances=5)
    assert 0 < len(found) <= 5 and all(r.mask.shape == (45, 61) for r in found)
    assert [r.score for r in found] == sorted((r.score for r in found), reverse=True)

    # the default backbone is the method's first; the masks are the finder's own on the folder
    same = TextFinder.from_folder(weights_root / "facebook--sam3")
    same.set_image(image)
    expected = same.find("bird", threshold=0.0, max_instances=5)
    again = build_text_finder("sam3")
    again.set_image(image)
    for got in (found, again.find("bird", threshold=0.0, max_instances=5)):
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a.mask, b.mask)
            assert a.score == pytest.approx(b.score, abs=1e-6)


def test_a_missing_checkpoint_names_the_id_and_the_folder(tmp_path, monkeypatch):
    import huggingface_hub.constants

    # an empty weights folder and hub cache, so a developer's real cache cannot make this pass
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(WeightsNotFound, match="facebook/sam3") as caught:
        build_text_finder("sam3")
    assert str(tmp_path / "facebook--sam3") in str(caught.value)
