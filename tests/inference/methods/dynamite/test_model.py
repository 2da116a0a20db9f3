"""DynaMITe model pieces: deformable attention, attention with cached K/V, shapes, pooling."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from inference.methods.dynamite.backbones import EffNetLite0, ResNet50, SwinTransformer
from inference.methods.dynamite.layers import attend, project
from inference.methods.dynamite.model import (
    ClickSet,
    DynaMITe,
    DynamiteConfig,
    normalise_batch,
    object_logits,
    preprocess,
)
from inference.methods.dynamite.msdeform import MSDeformAttn, ms_deform_attn_core
from inference.methods.dynamite.transformer import clamped_sine


def _bilinear(value: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """Hand bilinear read of a D×h×w map at normalised (x, y), pixel centres at (i + 0.5)/w,
    zero outside: the definition of the deformable-attention op."""
    d, h, w = value.shape
    px, py = x * w - 0.5, y * h - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    out = torch.zeros(d, dtype=value.dtype)
    for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
        for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                out += wx * wy * value[:, yy, xx]
    return out


def test_ms_deform_attn_core_matches_a_hand_loop():
    torch.manual_seed(0)
    shapes = [(3, 5), (2, 2)]
    batch, heads, dim, queries, points = 2, 2, 3, 4, 3
    value = torch.randn(batch, sum(h * w for h, w in shapes), heads, dim, dtype=torch.float64)
    locations = (
        torch.rand(batch, queries, heads, len(shapes), points, 2, dtype=torch.float64) * 1.4 - 0.2
    )
    weights = torch.rand(batch, queries, heads, len(shapes), points, dtype=torch.float64)
    out = ms_deform_attn_core(value, shapes, locations, weights)
    expected = torch.zeros(batch, queries, heads, dim, dtype=torch.float64)
    for b in range(batch):
        start = 0
        for level, (h, w) in enumerate(shapes):
            maps = value[b, start : start + h * w].permute(1, 2, 0).reshape(heads, dim, h, w)
            for q in range(queries):
                for m in range(heads):
                    for p in range(points):
                        x, y = locations[b, q, m, level, p].tolist()
                        expected[b, q, m] += weights[b, q, m, level, p] * _bilinear(maps[m], x, y)
            start += h * w
    torch.testing.assert_close(out, expected.view(batch, queries, heads * dim))


def test_ms_deform_attn_module_shapes_and_zero_offsets_read_the_reference_point():
    attn = MSDeformAttn(d_model=8, n_levels=1, n_heads=2, n_points=1)
    nn.init.zeros_(attn.sampling_offsets.bias)
    value = torch.randn(1, 6, 8)
    ref = torch.tensor([[(0.5 / 3, 0.5 / 2)]]).expand(1, 6, 1, 2)  # the first pixel's centre
    out = attn(torch.randn(1, 6, 8), ref, value, [(2, 3)])
    torch.testing.assert_close(out, attn.output_proj(attn.value_proj(value)[:, :1]).expand(1, 6, 8))


def test_attend_with_cached_projections_equals_multihead_attention():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4)
    query, key, value = torch.randn(5, 2, 16), torch.randn(7, 2, 16), torch.randn(7, 2, 16)
    blocked = torch.rand(2, 4, 5, 7) < 0.3
    blocked[..., 0] = False
    expected = mha(query, key, value, attn_mask=blocked.flatten(0, 1), need_weights=False)[0]
    torch.testing.assert_close(attend(mha, query, key, value, blocked=blocked), expected)
    cached = attend(mha, query, k=project(mha, key, 1), v=project(mha, value, 2), blocked=blocked)
    torch.testing.assert_close(cached, expected)


def test_padding_queries_have_no_sinusoidal_position():
    assert torch.count_nonzero(clamped_sine(torch.tensor([-1.0]), 128)) == 0
    enc = clamped_sine(torch.tensor([0.25]), 8)
    assert enc[0, 0] == pytest.approx(math.sin(2 * math.pi * 0.25)) and enc[0, 1] == pytest.approx(
        0.0, abs=1e-6
    )


@pytest.fixture(scope="module")
def deep():
    """Full depth (9 encoder, 5 decoder layers) on the tiny backbone and hidden 32."""
    torch.manual_seed(0)
    config = DynamiteConfig(
        backbone="tiny",
        hidden_dim=32,
        nheads=4,
        enc_ffn=64,
        dec_ffn=64,
        pixel_decoder_layers=1,
        pixel_decoder_ffn=64,
        pretrained_backbone=False,
    )
    return DynaMITe(config).eval()


def test_shapes_and_eleven_predictions(deep):
    images = torch.randn(2, 3, 96, 128)
    clicks = [
        ClickSet([[(10.0, 20.0, 0), (30.0, 40.0, 2)], [(60.0, 50.0, 1)]], [(5.0, 5.0, 3)]),
        ClickSet([[(10.0, 20.0, 0)]], []),
    ]
    with torch.no_grad():
        features = deep.encode(images)
        out = deep.decode(features, clicks)
    assert [tuple(m.shape) for m in features.multi_scale] == [
        (2, 32, 3, 4),
        (2, 32, 6, 8),
        (2, 32, 12, 16),
    ]
    assert tuple(features.mask_features.shape) == (2, 32, 24, 32)
    assert len(out.logits) == 11 == deep.config.num_predictions
    assert all(tuple(l.shape) == (2, 4 + 9, 24, 32) for l in out.logits)
    # image 2 is padded with 3 zero bg queries after its single click; static queries are last
    assert out.owner.tolist() == [[1, 1, 2, 0] + [0] * 9, [1, 0, 0, 0] + [0] * 9]
    assert tuple(features.select(1).mask_features.shape) == (1, 32, 24, 32)


def test_cached_fast_path_equals_the_full_path(deep):
    torch.manual_seed(3)
    clicks = [ClickSet([[(10.0, 20.0, 0)], [(60.0, 90.0, 1), (70.0, 100.0, 3)]], [(5.0, 5.0, 2)])]
    with torch.no_grad():
        features = deep.encode(torch.randn(1, 3, 96, 128))
        full = deep.decode(features, clicks)
        cache = deep.transformer.prepare(features, cache_kv=True)
        fast = deep.decode(features, clicks, cache=cache, all_predictions=False, pixel_chunk=100)
    assert len(fast.logits) == 1
    torch.testing.assert_close(fast.logits[0], full.logits[-1], atol=1e-4, rtol=1e-4)


def test_click_order_within_an_object_does_not_matter(deep):
    a = ClickSet(
        [[(10.0, 20.0, 0), (30.0, 40.0, 2), (50.0, 60.0, 4)], [(60.0, 50.0, 1)]], [(5.0, 5.0, 3)]
    )
    b = ClickSet(
        [[(50.0, 60.0, 4), (10.0, 20.0, 0), (30.0, 40.0, 2)], [(60.0, 50.0, 1)]], [(5.0, 5.0, 3)]
    )
    with torch.no_grad():
        features = deep.encode(torch.randn(1, 3, 96, 128))
        assert torch.equal(
            deep.decode(features, [a]).logits[-1], deep.decode(features, [b]).logits[-1]
        )


def test_background_only_and_empty_object_decode(deep):
    with torch.no_grad():
        features = deep.encode(torch.randn(1, 3, 64, 64))
        only_bg = deep.decode(features, [ClickSet([], [(5.0, 5.0, 0)])])
        none = deep.decode(features, [ClickSet([], [])])
        empty = deep.decode(features, [ClickSet([[], [(20.0, 20.0, 0)]], [])])
    assert only_bg.owner.tolist() == [[0] * 10] and none.owner.shape == (1, 9)
    pooled = object_logits(empty.logits[-1][0], empty.owner[0], 2)
    assert pooled.shape == (3, 16, 16) and bool((pooled[1] == torch.finfo(pooled.dtype).min).all())


def test_object_logits_pools_by_owner():
    logits = torch.tensor([1.0, 5.0, 2.0, 3.0]).view(4, 1, 1)
    pooled = object_logits(logits, torch.tensor([1, 0, 1, 0]), 1)
    assert pooled.flatten().tolist() == [5.0, 2.0]


def test_preprocess_follows_the_official_resize():
    image = np.zeros((480, 640, 3), np.uint8)
    x, size = preprocess(image, DynamiteConfig(pretrained_backbone=False))
    assert (size.h, size.w, size.Hp, size.Wp) == (800, 1067, 800, 1088) and x.shape == (
        1,
        3,
        800,
        1088,
    )
    assert bool((x[..., 1067:] == 0).all())  # padding is zero after normalisation
    torch.testing.assert_close(x[0, :, 0, 0], normalise_batch(torch.zeros(1, 3, 1, 1))[0, :, 0, 0])
    _, capped = preprocess(
        np.zeros((100, 1000, 3), np.uint8), DynamiteConfig(pretrained_backbone=False)
    )
    assert (capped.h, capped.w) == (133, 1333)


@pytest.mark.parametrize("backbone", [ResNet50, SwinTransformer])
def test_official_backbones_give_strides_4_to_32(backbone):
    with torch.no_grad():
        maps = backbone().eval()(torch.randn(1, 3, 64, 96))
    assert [tuple(m.shape[1:]) for m in maps] == [
        (c, 64 // s, 96 // s) for c, s in zip(backbone().channels, (4, 8, 16, 32))
    ]


def test_effnet_adapter_renormalises_exactly():
    torch.manual_seed(0)
    net = EffNetLite0(pretrained=False).eval()
    rgb = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        maps = net(normalise_batch(rgb))
        body = net.body
        x = body.bn1(body.conv_stem((rgb / 255 - 0.5) / 0.5))
        for stage in body.blocks[:2]:
            x = stage(x)
    assert [m.shape[1] for m in maps] == [24, 40, 112, 320] and maps[0].shape[-1] == 16
    torch.testing.assert_close(maps[0], x, atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_autocast_forward(dtype):
    model = DynaMITe(DynamiteConfig.tiny()).cuda().eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=dtype):
        features = model.encode(torch.randn(1, 3, 128, 96, device="cuda"))
        out = model.decode(features, [ClickSet([[(10.0, 20.0, 0)]], [(50.0, 50.0, 1)])])
    assert torch.isfinite(out.logits[-1].float()).all()
