"""The ViT family (DINO, DINOv2, MAE) on tiny random configs: same code path as the real ones."""

from __future__ import annotations

import pytest
import torch

from inference.backbones import build_backbone
from inference.backbones._util import IMAGENET_MEAN, IMAGENET_STD, resize_rgb, to_normalised_tensor
from inference.backbones.vit import VitBackbone, _key_projection

from .helpers import assert_row_stochastic

TINY = ["tiny-dino", "tiny-dinov2", "tiny-mae"]


def full_forward(backbone, image, layer):
    """Reference: the whole model with output_attentions=True, plus that layer's k_proj output."""
    x = resize_rgb(image, (backbone.image_size,) * 2)
    pixels = to_normalised_tensor(x, mean=IMAGENET_MEAN, std=IMAGENET_STD, device=backbone.device)
    keys = []
    handle = _key_projection(backbone.layers[layer]).register_forward_hook(
        lambda m, a, out: keys.append(out[0])
    )
    tokens = backbone.grid_hw[0] * backbone.grid_hw[1]
    try:
        with torch.inference_mode():
            out = backbone.model(
                pixel_values=pixels,
                output_attentions=True,
                output_hidden_states=True,
                **backbone._forward_kwargs(tokens),
            )
    finally:
        handle.remove()
    return out, keys[0]


@pytest.mark.parametrize("name", TINY)
def test_affinity_rows_sum_to_one_without_cls(name, rgb):
    backbone = build_backbone(name)
    affinity = backbone.affinity(rgb)
    assert affinity.grid_hw == (8, 8)
    assert_row_stochastic(affinity.matrix, 64)  # N = h·w: no CLS row/column


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("layer", [0, 1, -1])
def test_layer_choice_matches_the_full_forward(name, layer, rgb):
    backbone = build_backbone(name, layer=layer)
    out, keys = full_forward(backbone, rgb, layer)
    assert len(out.attentions) == 3  # eager: probabilities returned
    heads = out.attentions[layer][0].float().mean(dim=0)[1:, 1:]
    torch.testing.assert_close(
        backbone.affinity(rgb).matrix, heads / heads.sum(dim=1, keepdim=True)
    )
    torch.testing.assert_close(backbone.features(rgb), keys[1:].T.reshape(32, 8, 8))
    tokens = build_backbone(name, layer=layer, facet="token").features(rgb)
    # hidden_states[0] is the embedding output, [i + 1] the output of layer i.
    torch.testing.assert_close(tokens, out.hidden_states[layer % 3 + 1][0, 1:].T.reshape(32, 8, 8))


@pytest.mark.parametrize("name", TINY)
def test_layers_differ(name, rgb):
    first = build_backbone(name, layer=0).affinity(rgb).matrix
    last = build_backbone(name, layer=-1).affinity(rgb).matrix
    assert not torch.allclose(first, last)


@pytest.mark.parametrize("name", TINY)
def test_eager_attention_is_used_even_for_an_sdpa_model(name):
    backbone = build_backbone(name)
    assert backbone.model.config._attn_implementation == "eager"
    backbone.model.set_attn_implementation("sdpa")
    rebuilt = VitBackbone(
        backbone.model, image_size=backbone.image_size, forward_kwargs=backbone._forward_kwargs
    )
    assert rebuilt.model.config._attn_implementation == "eager"


def test_missing_probabilities_are_a_clear_error(rgb):
    backbone = build_backbone("tiny-dino")
    backbone.model.set_attn_implementation("sdpa")  # behind the backbone's back
    with pytest.raises(RuntimeError, match="eager"):
        backbone.affinity(rgb)


def test_mae_keeps_every_token_in_raster_order(rgb):
    backbone = build_backbone("tiny-mae")
    assert backbone.model.config.mask_ratio == 0.0
    out, _ = full_forward(backbone, rgb, -1)
    assert out.last_hidden_state.shape[1] == 1 + 64  # nothing masked
    assert torch.equal(out.ids_restore[0], torch.arange(64))  # identity shuffle
    assert torch.equal(out.mask, torch.zeros_like(out.mask))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="multiple of the patch size 14"):
        build_backbone("tiny-dinov2", image_size=100)
    with pytest.raises(ValueError, match="out of range"):
        build_backbone("tiny-dino", layer=3)
    with pytest.raises(ValueError, match="facet"):
        build_backbone("tiny-mae", facet="value")


def test_tiny_models_are_seeded(rgb):
    a = build_backbone("tiny-dino").features(rgb)
    torch.manual_seed(123)
    torch.testing.assert_close(build_backbone("tiny-dino").features(rgb), a)
    assert not torch.allclose(build_backbone("tiny-dino", seed=1).features(rgb), a)


@pytest.mark.parametrize("name", TINY)
def test_fp16_path_runs_on_cpu_too(name, rgb):
    """The GPU default is fp16: the same casts, checked here where CI has no GPU."""
    half = build_backbone(name, dtype=torch.float16)
    assert half.features(rgb).dtype == torch.float32
    matrix = half.affinity(rgb).matrix
    assert_row_stochastic(matrix, 64)
    torch.testing.assert_close(matrix, build_backbone(name).affinity(rgb).matrix, atol=1e-3, rtol=0)
