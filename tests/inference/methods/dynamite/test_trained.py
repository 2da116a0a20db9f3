"""A project's DynaMITe model through the registry: convert an upload, load it for serving."""

import dataclasses

import numpy as np
import pytest
import torch

from inference import Click, convert_trained, load_trained, method_info
from inference.methods.dynamite import DynaMITe, DynamiteConfig, DynamitePredictor
from inference.methods.dynamite.checkpoint import UntrustedPickle, save_model


def test_metadata_names_the_trained_model_file():
    trained = method_info("dynamite").trained
    assert trained is not None and ".pth" in trained.suffixes and ".safetensors" in trained.suffixes


def test_convert_then_load_serves_the_same_network(tmp_path):
    torch.manual_seed(0)
    net = DynaMITe(DynamiteConfig.tiny()).eval()
    upload = tmp_path / "upload.safetensors"
    save_model(net, upload)
    config = convert_trained("dynamite", upload, tmp_path / "model.safetensors", {})
    assert config == dataclasses.asdict(dataclasses.replace(net.config, pretrained_backbone=False))
    predictor = load_trained("dynamite", tmp_path / "model.safetensors", config, "cpu")
    assert isinstance(predictor, DynamitePredictor)
    again = load_trained("dynamite", tmp_path / "model.safetensors", config, "cpu")
    assert again.model is predictor.model  # one network per file and device, shared
    image = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    reference = DynamitePredictor(net)
    for p in (predictor, reference):
        p.set_image(image)
    clicks = [Click(20, 30), Click(60, 40, positive=False)]
    assert np.array_equal(predictor.predict(clicks).mask, reference.predict(clicks).mask)


def test_convert_refuses_a_pickle_beyond_tensors(tmp_path):
    import argparse

    net = DynaMITe(DynamiteConfig.tiny())
    upload = tmp_path / "model_final.pth"
    torch.save({"model": net.state_dict(), "cfg": argparse.Namespace(lr=1e-4)}, upload)
    with pytest.raises(UntrustedPickle):
        convert_trained("dynamite", upload, tmp_path / "model.safetensors", {})
