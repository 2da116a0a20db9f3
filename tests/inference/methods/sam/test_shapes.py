"""The SAM family at its real shapes: the configs give the published architectures. Parameter
counts are counted on the meta device (no memory, no init), so every variant is checked
exactly; one small variant is built for real and served by the predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from inference import Click
from inference.methods.sam.predictor import SamFamilyPredictor
from inference.methods.sam.shapes import (
    ARCHITECTURES,
    default_image_processor,
    parameter_count,
    random_loaded,
    real_config,
)
from inference.methods.sam.variants import FAMILIES

# Published sizes: SAM 93.7 M / 312 M / 641 M; SAM 2.1 38.9 / 46 / 80.8 / 224.4 M with the
# video memory modules, which Sam2Model (the image model) leaves out: 7.5 M in each.
PARAMS = {
    ("sam", "vit-b"): 93_735_728,
    ("sam", "vit-l"): 312_343_088,
    ("sam", "vit-h"): 641_090_864,
    ("sam2", "hiera-tiny"): 31_440_721,
    ("sam2", "hiera-small"): 38_538_577,
    ("sam2", "hiera-base-plus"): 73_328_401,
    ("sam2", "hiera-large"): 216_924_865,
    ("sam3", "sam3"): 458_260_369,
}


def test_every_listed_variant_has_a_shape():
    assert set(ARCHITECTURES) == set(PARAMS)
    assert ARCHITECTURES[0] == ("sam", "vit-b")


@pytest.mark.parametrize(("family", "variant"), list(PARAMS))
def test_parameter_counts_are_the_published_ones(family, variant):
    model_class = getattr(transformers, FAMILIES[family].model_class)
    with torch.device("meta"):
        model = model_class(real_config(family, variant))
    assert parameter_count(model) == PARAMS[family, variant]


def test_vit_b_is_the_default_config_and_the_others_its_published_changes():
    vision = real_config("sam", "vit-b").vision_config.to_dict()
    default = transformers.SamConfig().vision_config.to_dict()
    # the one change: init std 0.02, not 1e-10 (~1e-20 activations: subnormal, slow on CPU)
    assert (vision.pop("initializer_range"), default.pop("initializer_range")) == (0.02, 1e-10)
    assert vision == default
    huge = real_config("sam", "vit-h").vision_config
    assert (huge.hidden_size, huge.num_hidden_layers, huge.num_attention_heads) == (1280, 32, 16)
    assert list(huge.global_attn_indexes) == [7, 15, 23, 31]
    assert huge.mlp_dim == 4 * 1280


def _init_stds(config: dict) -> set[float]:
    """Every ``initializer_range`` of a config dict and its nested sub-configs."""
    found = {config["initializer_range"]} if "initializer_range" in config else set()
    for value in config.values():
        if isinstance(value, dict):
            found |= _init_stds(value)
    return found


@pytest.mark.parametrize(("family", "variant"), list(PARAMS))
def test_random_weights_are_drawn_at_a_trained_scale(family, variant):
    """Every sub-model's init std is 0.02 (SAM's 1e-10 default makes subnormal activations)."""
    assert _init_stds(real_config(family, variant).to_dict()) == {0.02}


def test_hiera_large_stages_and_windows():
    config = real_config("sam2", "hiera-large").vision_config
    backbone = config.backbone_config
    assert backbone.blocks_per_stage == [2, 6, 36, 4]
    assert backbone.embed_dim_per_stage == [144, 288, 576, 1152]
    assert backbone.window_size_per_stage == [8, 4, 16, 8]
    assert backbone.global_attention_blocks == [23, 33, 43]
    assert config.backbone_channel_list == [1152, 576, 288, 144]


def test_unknown_variants_are_refused():
    for family, variant in (("sam", "vit-x"), ("sam2", "hiera-huge"), ("sam3", "sam4")):
        with pytest.raises(KeyError):
            real_config(family, variant)
    with pytest.raises(KeyError, match="unknown SAM family"):
        real_config("sam9", "x")


def test_a_random_model_serves_the_predictor_at_the_published_input_size():
    loaded = random_loaded("sam2", "hiera-tiny")
    assert loaded.name == "hiera-tiny-random"
    assert not loaded.model.training
    assert loaded.processor.target_size == 1024
    predictor = SamFamilyPredictor(loaded)
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    predictor.set_image(image)
    # SAM 2's three feature levels at 1024² input: strides 4, 8 and 16
    levels = [tuple(e.shape[-2:]) for e in predictor._embeddings]
    assert levels == [(256, 256), (128, 128), (64, 64)]
    result = predictor.predict_prompts([Click(10, 20)])
    assert result.mask.shape == (48, 64)
    assert len(result.candidates) == 3


def test_sam_and_sam3_default_processors_read_their_published_sizes():
    sam = default_image_processor("sam")
    sam3 = default_image_processor("sam3")
    assert sam.size["longest_edge"] == 1024
    assert (sam3.size["height"], sam3.size["width"]) == (1008, 1008)
