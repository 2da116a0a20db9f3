"""Strict loading of detectron2-style pickles and our safetensors files."""

import pytest
import torch

from inference.methods.dynamite.checkpoint import (
    convert_to_safetensors,
    load_model,
    read_state_dict,
)
from inference.methods.dynamite.model import ClickSet, DynaMITe, DynamiteConfig


def _outputs(model, size=64):
    torch.manual_seed(1)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        features = model.encode(x)
        out = model.decode(features, [ClickSet([[(10.0, 12.0, 0)]], [(40.0, 30.0, 1)])])
    return [features.mask_features, *out.logits]


@pytest.mark.parametrize(
    "config",
    [DynamiteConfig.tiny(), DynamiteConfig(backbone="resnet50", pretrained_backbone=False)],
    ids=["tiny", "resnet50"],
)
def test_pickle_to_safetensors_round_trip(tmp_path, config):
    torch.manual_seed(0)
    model = DynaMITe(config).eval()
    pickle = tmp_path / "model_final.pth"
    torch.save({"model": model.state_dict(), "iteration": 5}, pickle)
    # the R50 config is recognised from its keys; the tiny one has to be given
    loaded = load_model(pickle, None if config.backbone == "resnet50" else config)
    assert loaded.config.backbone == config.backbone
    safetensors = tmp_path / "model.safetensors"
    convert_to_safetensors(pickle, safetensors, None if config.backbone == "resnet50" else config)
    again = load_model(safetensors)  # the config travels in the metadata
    assert again.config == loaded.config
    for a, b, c in zip(_outputs(model), _outputs(loaded), _outputs(again)):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_loading_is_strict(tmp_path):
    model = DynaMITe(DynamiteConfig.tiny())
    state = model.state_dict()
    state.pop("sem_seg_head.interactive_transformer.query_embed")
    path = tmp_path / "broken.pth"
    torch.save({"model": state}, path)
    with pytest.raises(RuntimeError, match="query_embed"):
        load_model(path, DynamiteConfig.tiny())
    state = model.state_dict()
    state["sem_seg_head.extra"] = torch.zeros(1)
    torch.save({"model": state}, path)
    with pytest.raises(RuntimeError, match="extra"):
        load_model(path, DynamiteConfig.tiny())


def test_read_state_dict_accepts_a_bare_state_dict(tmp_path):
    model = DynaMITe(DynamiteConfig.tiny())
    path = tmp_path / "bare.pth"
    torch.save(model.state_dict(), path)
    state, config = read_state_dict(path)
    assert config is None and state.keys() == model.state_dict().keys()


def test_a_pickle_beyond_tensors_is_refused_unless_trusted(tmp_path):
    """A full unpickle runs code named by the file: only with ``trusted`` (never on upload)."""
    import argparse

    from inference.methods.dynamite.checkpoint import UntrustedPickle
    from inference.methods.dynamite.model import DynaMITe, DynamiteConfig

    net = DynaMITe(DynamiteConfig.tiny())
    path = tmp_path / "with_extras.pth"
    torch.save({"model": net.state_dict(), "cfg": argparse.Namespace(lr=1e-4)}, path)
    with pytest.raises(UntrustedPickle, match="more than plain tensors"):
        load_model(path, DynamiteConfig.tiny())
    loaded = load_model(path, DynamiteConfig.tiny(), trusted=True)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in net.state_dict().items())
