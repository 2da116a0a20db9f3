"""The SD2 self-attention recorder: a tiny random UNet, and the real SD2 layout on the meta
device."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from inference.backbones import build_backbone
from inference.backbones.sd2_attention import (
    SD2_LAYER_WEIGHTS,
    AttentionAccumulator,
    RecordingAttnProcessor,
    record_self_attention,
)

from .helpers import assert_row_stochastic

# The SD2 (768-v) unet/config.json values that shape the layer names.
SD2_UNET_CONFIG = {
    "sample_size": 96,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280),
    "attention_head_dim": (5, 10, 20, 20),
    "cross_attention_dim": 1024,
    "use_linear_projection": True,
    "upcast_attention": True,
    "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
}


@pytest.fixture(scope="module")
def tiny():
    return build_backbone("tiny-sd2")


@pytest.fixture(scope="module")
def latent(tiny):
    image = np.random.default_rng(1).integers(0, 256, size=(100, 140, 3), dtype=np.uint8)
    with torch.inference_mode():
        return tiny.latent(image)


def run_unet(backbone, latent):
    with torch.inference_mode():
        return backbone.unet(
            latent, timestep=100, encoder_hidden_states=backbone.prompt_embedding
        ).sample


def test_latent_is_the_scaled_posterior_mode(tiny, latent):
    assert latent.shape == (1, 4, 16, 16)
    image = np.random.default_rng(1).integers(0, 256, size=(100, 140, 3), dtype=np.uint8)
    with torch.inference_mode():
        again = tiny.latent(image)
    torch.testing.assert_close(again, latent)  # the mode: no sampling noise


def test_rows_sum_to_one(tiny, latent):
    with record_self_attention(tiny.unet) as accumulator:
        run_unet(tiny, latent)
    assert accumulator.recorded == list(SD2_LAYER_WEIGHTS)
    assert_row_stochastic(accumulator.result(), 16 * 16)


def test_unet_output_is_unchanged(tiny, latent):
    reference = run_unet(tiny, latent)
    with record_self_attention(tiny.unet, query_chunk=50):  # chunks not dividing N
        recorded = run_unet(tiny, latent)
    torch.testing.assert_close(recorded, reference, atol=1e-5, rtol=1e-4)


def test_processors_are_restored_even_after_an_error(tiny, latent):
    before = dict(tiny.unet.attn_processors)
    with record_self_attention(tiny.unet):
        during = tiny.unet.attn_processors
        assert {
            n[: -len(".processor")]
            for n, p in during.items()
            if isinstance(p, RecordingAttnProcessor)
        } == set(SD2_LAYER_WEIGHTS)
    assert all(tiny.unet.attn_processors[n] is p for n, p in before.items())
    with pytest.raises(RuntimeError, match="boom"), record_self_attention(tiny.unet):
        raise RuntimeError("boom")
    assert all(tiny.unet.attn_processors[n] is p for n, p in before.items())


class _BruteForce:
    """diffusers' classic AttnProcessor, keeping every head's full probabilities."""

    def __init__(self, store, name):
        self.store, self.name = store, name

    def __call__(
        self,
        attn,
        hidden_states,
        encoder_hidden_states=None,
        attention_mask=None,
        temb=None,
        **kwargs,
    ):
        from diffusers.models.attention_processor import AttnProcessor

        original = attn.get_attention_scores

        def scores(query, key, mask=None):
            probs = original(query, key, mask)  # (batch·heads, N, N)
            self.store[self.name] = probs.float().mean(dim=0)  # batch 1: head mean
            return probs

        attn.get_attention_scores = scores
        try:
            return AttnProcessor()(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        finally:
            del attn.get_attention_scores


@pytest.mark.parametrize(
    "weights",
    [
        SD2_LAYER_WEIGHTS,
        {
            "up_blocks.3.attentions.0.transformer_blocks.0.attn1": 0.2,
            "up_blocks.3.attentions.1.transformer_blocks.0.attn1": 0.6,  # sum ≠ 1: renormalised
        },
    ],
)
def test_accumulator_equals_brute_force_head_mean(tiny, latent, weights):
    store: dict[str, torch.Tensor] = {}
    originals = dict(tiny.unet.attn_processors)
    tiny.unet.set_attn_processor(
        {
            n: _BruteForce(store, n[: -len(".processor")])
            if n[: -len(".processor")] in weights
            else p
            for n, p in originals.items()
        }
    )
    try:
        run_unet(tiny, latent)
    finally:
        tiny.unet.set_attn_processor(originals)
    reference = sum(w * store[name] for name, w in weights.items())
    reference = reference / reference.sum(dim=1, keepdim=True)
    assert tiny.unet.get_submodule(next(iter(weights))).heads == 4  # a real head average

    with record_self_attention(tiny.unet, weights, query_chunk=64) as accumulator:
        run_unet(tiny, latent)
    torch.testing.assert_close(accumulator.result(), reference, atol=1e-6, rtol=1e-5)


class _LargestTensors(TorchDispatchMode):
    """Records the element count of every tensor an op produces."""

    def __init__(self):
        super().__init__()
        self.outputs: list[tuple[str, int, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.outputs.append((str(func), t.numel(), t.untyped_storage().data_ptr()))
        return out


def test_recorder_never_materialises_a_full_attention_map(tiny, latent):
    """Apart from the accumulator, no tensor reaches N×N elements (one head's full map)."""
    name = "up_blocks.3.attentions.0.transformer_blocks.0.attn1"
    attn = tiny.unet.get_submodule(name)
    n, chunk = 256, 32
    accumulator = AttentionAccumulator()
    accumulator.total = torch.zeros(n, n)
    hidden = torch.randn(1, n, attn.to_q.in_features)
    spy = _LargestTensors()
    with torch.inference_mode(), spy:
        RecordingAttnProcessor(name, accumulator, weight=1.0, query_chunk=chunk)(attn, hidden)
    own = accumulator.total.untyped_storage().data_ptr()
    big = [(op, size) for op, size, ptr in spy.outputs if size >= n * n and ptr != own]
    assert big == []
    assert max(size for op, size, ptr in spy.outputs if ptr != own) <= chunk * n
    assert_row_stochastic(accumulator.result(), n)


def test_bad_layer_choices_are_refused(tiny):
    with pytest.raises(KeyError, match="no layer"), record_self_attention(tiny.unet, {"nope": 1}):
        pass
    cross = "up_blocks.3.attentions.0.transformer_blocks.0.attn2"
    with (
        pytest.raises(ValueError, match="cross-attention"),
        record_self_attention(tiny.unet, {cross: 1}),
    ):
        pass
    with pytest.raises(ValueError, match="non-zero"), record_self_attention(tiny.unet, {}):
        pass


def test_real_sd2_layout_has_the_two_layers_and_the_recorder_installs_only_there():
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(**SD2_UNET_CONFIG)
    self_attention = [n[: -len(".processor")] for n in unet.attn_processors if ".attn1." in n]
    assert len(self_attention) == 16
    for name in SD2_LAYER_WEIGHTS:
        attn = unet.get_submodule(name)
        assert attn.heads == 5 and attn.to_q.in_features == 320  # 5 heads of 64 at 128×128
    before = dict(unet.attn_processors)
    with record_self_attention(unet):
        installed = {
            n[: -len(".processor")]
            for n, p in unet.attn_processors.items()
            if isinstance(p, RecordingAttnProcessor)
        }
    assert installed == set(SD2_LAYER_WEIGHTS)
    assert all(unet.attn_processors[n] is p for n, p in before.items())


def test_backbone_affinity_and_features(tiny, rgb):
    affinity = tiny.affinity(rgb)
    assert affinity.grid_hw == (16, 16)
    assert_row_stochastic(affinity.matrix, 256)
    features = tiny.features(rgb)
    assert features.shape == (32, 16, 16) and features.dtype == torch.float32
    processors = tiny.unet.attn_processors.values()
    assert not any(isinstance(p, RecordingAttnProcessor) for p in processors)


def test_a_weighted_layer_that_never_runs_is_an_error(rgb):
    # Simulate a UNet whose forward pass skips a weighted layer's transformer.
    backbone = build_backbone("tiny-sd2")
    backbone.layer_weights = {"up_blocks.3.attentions.0.transformer_blocks.0.attn1": 1.0}
    skipped = backbone.unet.up_blocks[3].attentions[0]
    skipped.forward = lambda hidden_states, *args, **kwargs: (hidden_states,)
    with pytest.raises(RuntimeError, match="never ran"):
        backbone.affinity(rgb)


@pytest.mark.gpu
def test_fp16_on_gpu_at_full_resolution_stays_within_memory(rgb):
    """r = 128 (16384 tokens): the accumulator is 1 GiB; one head's full fp32 map would be another
    1 GiB and all four heads 4 GiB, so a peak well under that proves on-the-fly reduction."""
    backbone = build_backbone("tiny-sd2", device="cuda", resolution=128, query_chunk=2048)
    assert backbone.dtype == torch.float16
    torch.cuda.reset_peak_memory_stats()
    affinity = backbone.affinity(rgb)
    peak = torch.cuda.max_memory_allocated()
    assert_row_stochastic(affinity.matrix, 128 * 128, atol=1e-4)
    assert peak < 1.75 * 2**30, f"peak {peak / 2**30:.2f} GiB"


def test_fp16_path_runs_on_cpu_too(tiny, rgb):
    """The GPU default is fp16: the same casts, checked here where CI has no GPU."""
    half = build_backbone("tiny-sd2", dtype=torch.float16)
    affinity = half.affinity(rgb)
    assert_row_stochastic(affinity.matrix, 256)
    torch.testing.assert_close(affinity.matrix, tiny.affinity(rgb).matrix, atol=1e-3, rtol=0)
