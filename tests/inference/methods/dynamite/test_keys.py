"""The R50 and Swin-T models carry exactly the official checkpoint keys (spec A5.3)."""

import pytest
import torch

from inference.methods.dynamite.backbones import relative_position_index
from inference.methods.dynamite.keys import describe_mismatch, expected_keys
from inference.methods.dynamite.model import DynaMITe, DynamiteConfig


@pytest.fixture(scope="module", params=["resnet50", "swin_tiny"])
def model(request):
    return DynaMITe(DynamiteConfig(backbone=request.param, pretrained_backbone=False))


def test_state_dict_matches_the_official_key_list(model):
    assert describe_mismatch(model.state_dict(), expected_keys(model.config.backbone)) == []


def test_top_level_prefixes(model):
    prefixes = {
        k.split(".")[0] if k.startswith("backbone.") else ".".join(k.split(".")[:2])
        for k in model.state_dict()
    }
    assert prefixes == {
        "backbone",
        "sem_seg_head.pixel_decoder",
        "sem_seg_head.interactive_transformer",
    }


def test_bg_query_is_saved_but_frozen_and_input_proj_is_empty(model):
    transformer = model.sem_seg_head.interactive_transformer
    assert "sem_seg_head.interactive_transformer.bg_query" in model.state_dict()
    assert not transformer.bg_query.requires_grad and torch.count_nonzero(transformer.bg_query) == 0
    assert len(transformer.input_proj) == 3 and not list(transformer.input_proj.parameters())
    assert not any(k.startswith("pixel_") for k in model.state_dict())  # non-persistent mean/std


def test_swin_relative_position_index():
    index = relative_position_index(7)
    assert index.shape == (49, 49) and index.dtype == torch.long
    # query (0, 0) vs key (0, 0): offset (0, 0) → centre of the 13×13 table
    assert index[0, 0] == 6 * 13 + 6
    # query (0, 0) vs key (6, 6): offset (−6, −6) → first row and column
    assert index[0, 48] == 0 and index[48, 0] == 12 * 13 + 12
    assert set(index.flatten().tolist()) == set(range(169))
