"""The SAM family's registration and checkpoints: listed without torch, loaded from local disk
only (a variant name resolves to its Hugging Face id), a clear error naming what is missing."""

from __future__ import annotations

import numpy as np
import pytest

from inference import Click, build_predictor, method_info
from inference.methods.sam.tiny import save_tiny
from inference.weights import WEIGHTS_DIR_ENV, WeightsNotFound
from tests.pyrun import run_python


@pytest.fixture
def weights_root(tmp_path, monkeypatch):
    """An empty weights folder and hub cache, so a developer's real cache cannot interfere."""
    import huggingface_hub.constants

    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path


def test_the_methods_are_listed_with_their_variants():
    expected = {
        "sam": ("vit-b", "vit-l", "vit-h"),
        "sam2": ("hiera-tiny", "hiera-small", "hiera-base-plus", "hiera-large"),
        "sam3": ("sam3",),
    }
    for name, backbones in expected.items():
        info = method_info(name)
        assert info.prompts == ("click", "box", "mask") and info.backbones == backbones, name
        assert not info.multi_object and info.trained is None and info.interactive
        assert info.label.endswith("(clicks, box)") and info.summary


def test_listing_the_methods_imports_no_torch_or_transformers():
    code = (
        "import sys, inference\n"
        "names = {i.name for i in inference.method_infos()}\n"
        "assert {'sam', 'sam2', 'sam3'} <= names, names\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("method", "backbone", "model_id"),
    [
        ("sam", None, "facebook/sam-vit-base"),
        ("sam", "vit-h", "facebook/sam-vit-huge"),
        ("sam2", None, "facebook/sam2.1-hiera-tiny"),
        ("sam2", "hiera-base-plus", "facebook/sam2.1-hiera-base-plus"),
        ("sam3", None, "facebook/sam3"),
    ],
)
def test_a_missing_checkpoint_names_the_model_and_the_folder(
    weights_root, method, backbone, model_id
):
    with pytest.raises(WeightsNotFound) as caught:
        build_predictor(method, backbone=backbone)
    message = str(caught.value)
    assert caught.value.model_id == model_id and model_id in message
    assert str(weights_root / model_id.replace("/", "--")) in message


@pytest.mark.parametrize(
    ("method", "folder"),
    [("sam", "facebook--sam-vit-base"), ("sam2", "sam2.1-hiera-tiny"), ("sam3", "facebook--sam3")],
)
def test_the_default_variant_loads_from_the_weights_folder(weights_root, method, folder):
    # the same path a real checkpoint takes: variant → model id → folder → from_pretrained
    save_tiny(method, weights_root / folder)
    predictor = build_predictor(method)
    assert predictor.backbone.name == method_info(method).backbones[0]
    predictor.set_image(np.zeros((12, 17, 3), np.uint8))
    result = predictor.predict([Click(5, 6)])
    assert result.mask.shape == (12, 17) and len(result.candidates) == 3
    # an explicit folder works as a backbone too
    assert build_predictor(method, backbone=str(weights_root / folder)).backbone.model is not None
