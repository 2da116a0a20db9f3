"""Checkpoint key names and shapes of the released configs, written out from spec A5.3 (the
official module tree) independently of our modules, so a test can hold the model to them and a
loader can explain a mismatch before ``load_state_dict`` does.

Only the R50 and Swin-T configs are listed (hidden 256, 8 heads, 9 encoder / 5 decoder layers,
6 deformable layers with FFN 1024, 9 static background queries).
"""

from __future__ import annotations

Shape = tuple[int, ...]
C = 256  # hidden / conv / mask dim of every released config


def _linear(prefix: str, out: int, inp: int, bias: bool = True) -> dict[str, Shape]:
    keys: dict[str, Shape] = {f"{prefix}.weight": (out, inp)}
    if bias:
        keys[f"{prefix}.bias"] = (out,)
    return keys


def _norm(prefix: str, channels: int, *, frozen_bn: bool = False) -> dict[str, Shape]:
    names = ("weight", "bias", "running_mean", "running_var") if frozen_bn else ("weight", "bias")
    return {f"{prefix}.{n}": (channels,) for n in names}


def _mha(prefix: str) -> dict[str, Shape]:
    return {
        f"{prefix}.in_proj_weight": (3 * C, C),
        f"{prefix}.in_proj_bias": (3 * C,),
        **_linear(f"{prefix}.out_proj", C, C),
    }


def pixel_decoder_keys(
    in_channels: tuple[int, int, int, int],
    layers: int = 6,
    ffn: int = 1024,
    heads: int = 8,
    levels: int = 3,
    points: int = 4,
) -> dict[str, Shape]:
    """``sem_seg_head.pixel_decoder.*``; ``in_channels`` at strides 4, 8, 16, 32."""
    p = "sem_seg_head.pixel_decoder"
    keys: dict[str, Shape] = {}
    for i, cin in enumerate(reversed(in_channels[1:])):  # index 0 = coarsest
        keys[f"{p}.input_proj.{i}.0.weight"] = (C, cin, 1, 1)
        keys[f"{p}.input_proj.{i}.0.bias"] = (C,)
        keys.update(_norm(f"{p}.input_proj.{i}.1", C))
    keys[f"{p}.transformer.level_embed"] = (levels, C)
    for i in range(layers):
        layer = f"{p}.transformer.encoder.layers.{i}"
        keys.update(_linear(f"{layer}.self_attn.sampling_offsets", heads * levels * points * 2, C))
        keys.update(_linear(f"{layer}.self_attn.attention_weights", heads * levels * points, C))
        keys.update(_linear(f"{layer}.self_attn.value_proj", C, C))
        keys.update(_linear(f"{layer}.self_attn.output_proj", C, C))
        keys.update(_norm(f"{layer}.norm1", C))
        keys.update(_linear(f"{layer}.linear1", ffn, C))
        keys.update(_linear(f"{layer}.linear2", C, ffn))
        keys.update(_norm(f"{layer}.norm2", C))
    keys[f"{p}.mask_features.weight"] = (C, C, 1, 1)
    keys[f"{p}.mask_features.bias"] = (C,)
    keys[f"{p}.adapter_1.weight"] = (C, in_channels[0], 1, 1)
    keys.update(_norm(f"{p}.adapter_1.norm", C))
    keys[f"{p}.layer_1.weight"] = (C, C, 3, 3)
    keys.update(_norm(f"{p}.layer_1.norm", C))
    for i in range(3):
        keys[f"{p}.refine.{i}.weight"] = (C, C, 3, 3)
        keys[f"{p}.refine.{i}.bias"] = (C,)
    return keys


def interactive_transformer_keys(
    enc_layers: int = 9,
    dec_layers: int = 5,
    enc_ffn: int = 2048,
    dec_ffn: int = 512,
    static_bg: int = 9,
) -> dict[str, Shape]:
    """``sem_seg_head.interactive_transformer.*`` (``input_proj`` is empty)."""
    p = "sem_seg_head.interactive_transformer"
    keys: dict[str, Shape] = {}
    for i in range(enc_layers):
        keys.update(_mha(f"{p}.encoder.self_attention_layers.{i}.self_attn"))
        keys.update(_norm(f"{p}.encoder.self_attention_layers.{i}.norm", C))
        keys.update(_mha(f"{p}.encoder.cross_attention_layers.{i}.multihead_attn"))
        keys.update(_norm(f"{p}.encoder.cross_attention_layers.{i}.norm", C))
        keys.update(_linear(f"{p}.encoder.ffn_layers.{i}.linear1", enc_ffn, C))
        keys.update(_linear(f"{p}.encoder.ffn_layers.{i}.linear2", C, enc_ffn))
        keys.update(_norm(f"{p}.encoder.ffn_layers.{i}.norm", C))
    for i in range(dec_layers):
        keys.update(_mha(f"{p}.decoder.cross_attention_layers.{i}.multihead_attn"))
        keys.update(_norm(f"{p}.decoder.cross_attention_layers.{i}.norm", C))
        keys.update(_linear(f"{p}.decoder.ffn_layers.{i}.linear1", dec_ffn, C))
        keys.update(_linear(f"{p}.decoder.ffn_layers.{i}.linear2", C, dec_ffn))
        keys.update(_norm(f"{p}.decoder.ffn_layers.{i}.norm", C))
    keys.update(_norm(f"{p}.layer_norm", C))
    keys.update(_linear(f"{p}.queries_nonlinear_projection.0", C, C))
    keys.update(_linear(f"{p}.queries_nonlinear_projection.2", C, C))
    keys.update(_linear(f"{p}.ca_qpos_sine_proj", C, 3 * (C // 2)))
    keys[f"{p}.query_embed"] = (C,)
    keys[f"{p}.static_bg_pe"] = (static_bg, C)
    keys[f"{p}.static_bg_query"] = (static_bg, C)
    keys[f"{p}.bg_query"] = (C,)
    keys[f"{p}.level_embed.weight"] = (3, C)
    for i in range(3):
        keys.update(_linear(f"{p}.mask_embed.layers.{i}", C, C))
    return keys


def resnet50_keys() -> dict[str, Shape]:
    """``backbone.*`` of detectron2's ResNet-50 with FrozenBN (stride in the 3×3)."""
    keys: dict[str, Shape] = {"backbone.stem.conv1.weight": (64, 3, 7, 7)}
    keys.update(_norm("backbone.stem.conv1.norm", 64, frozen_bn=True))
    cin = 64
    for stage, (blocks, bottleneck) in enumerate(((3, 64), (4, 128), (6, 256), (3, 512)), start=2):
        cout = 4 * bottleneck
        for i in range(blocks):
            block = f"backbone.res{stage}.{i}"
            first_in = cin if i == 0 else cout
            convs = [
                ("conv1", (bottleneck, first_in, 1, 1)),
                ("conv2", (bottleneck, bottleneck, 3, 3)),
                ("conv3", (cout, bottleneck, 1, 1)),
            ]
            if i == 0:
                convs.append(("shortcut", (cout, cin, 1, 1)))
            for name, shape in convs:
                keys[f"{block}.{name}.weight"] = shape
                keys.update(_norm(f"{block}.{name}.norm", shape[0], frozen_bn=True))
        cin = cout
    return keys


def swin_tiny_keys(
    embed: int = 96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), window: int = 7
) -> dict[str, Shape]:
    """``backbone.*`` of Mask2Former's D2SwinTransformer (Swin-T by default)."""
    keys: dict[str, Shape] = {
        "backbone.patch_embed.proj.weight": (embed, 3, 4, 4),
        "backbone.patch_embed.proj.bias": (embed,),
    }
    keys.update(_norm("backbone.patch_embed.norm", embed))
    for s, (depth, h) in enumerate(zip(depths, heads)):
        dim = embed * 2**s
        for b in range(depth):
            block = f"backbone.layers.{s}.blocks.{b}"
            keys.update(_norm(f"{block}.norm1", dim))
            keys[f"{block}.attn.relative_position_bias_table"] = ((2 * window - 1) ** 2, h)
            keys[f"{block}.attn.relative_position_index"] = (window * window, window * window)
            keys.update(_linear(f"{block}.attn.qkv", 3 * dim, dim))
            keys.update(_linear(f"{block}.attn.proj", dim, dim))
            keys.update(_norm(f"{block}.norm2", dim))
            keys.update(_linear(f"{block}.mlp.fc1", 4 * dim, dim))
            keys.update(_linear(f"{block}.mlp.fc2", dim, 4 * dim))
        if s < 3:
            keys.update(
                _linear(f"backbone.layers.{s}.downsample.reduction", 2 * dim, 4 * dim, bias=False)
            )
            keys.update(_norm(f"backbone.layers.{s}.downsample.norm", 4 * dim))
        keys.update(_norm(f"backbone.norm{s}", dim))
    return keys


def expected_keys(backbone: str) -> dict[str, Shape]:
    """Every checkpoint key → shape of the released ``resnet50`` or ``swin_tiny`` config."""
    if backbone == "resnet50":
        return {
            **resnet50_keys(),
            **pixel_decoder_keys((256, 512, 1024, 2048)),
            **interactive_transformer_keys(),
        }
    if backbone == "swin_tiny":
        return {
            **swin_tiny_keys(),
            **pixel_decoder_keys((96, 192, 384, 768)),
            **interactive_transformer_keys(),
        }
    raise ValueError(f"no key list for backbone {backbone!r}")


def describe_mismatch(state: dict, expected: dict[str, Shape]) -> list[str]:
    """Human-readable differences between a state dict and an expected key → shape map."""
    lines = [f"missing: {k}" for k in expected if k not in state]
    lines += [f"unexpected: {k}" for k in state if k not in expected]
    lines += [
        f"shape of {k}: {tuple(state[k].shape)} != {expected[k]}"
        for k in expected
        if k in state and tuple(state[k].shape) != expected[k]
    ]
    return lines
