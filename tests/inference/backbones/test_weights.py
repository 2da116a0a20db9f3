"""Checkpoint lookup: local folders and the Hugging Face cache only, clear errors, no network."""

from __future__ import annotations

import pytest

from inference.backbones import build_backbone
from inference.weights import WEIGHTS_DIR_ENV, WeightsNotFound, resolve_weights


@pytest.fixture
def weights_root(tmp_path, monkeypatch):
    root = tmp_path / "weights"
    root.mkdir()
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(root))
    return root


@pytest.fixture
def empty_hf_cache(tmp_path):
    return tmp_path / "hub"


def fake_hf_cache(cache, model_id, commit="0123456789abcdef0123456789abcdef01234567"):
    """The layout huggingface_hub writes: models--owner--name/{refs/main, snapshots/<commit>/}."""
    repo = cache / f"models--{model_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_missing_checkpoint_names_the_id_and_the_setting(weights_root, empty_hf_cache):
    with pytest.raises(WeightsNotFound) as caught:
        resolve_weights("nobody/no-such-model", hf_cache_dir=empty_hf_cache)
    message = str(caught.value)
    assert "nobody/no-such-model" in message and WEIGHTS_DIR_ENV in message
    assert str(weights_root / "nobody--no-such-model") in message  # says where it looked
    assert isinstance(caught.value, FileNotFoundError)


def test_missing_checkpoint_with_the_setting_unset(monkeypatch, empty_hf_cache):
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    with pytest.raises(WeightsNotFound, match=f"{WEIGHTS_DIR_ENV} \\(unset\\)"):
        resolve_weights("nobody/no-such-model", hf_cache_dir=empty_hf_cache)


def test_folder_named_owner_dash_dash_name_is_found_first(weights_root, empty_hf_cache):
    (weights_root / "dinov2-base").mkdir()
    assert (
        resolve_weights("facebook/dinov2-base", hf_cache_dir=empty_hf_cache)
        == weights_root / "dinov2-base"
    )
    (weights_root / "facebook--dinov2-base").mkdir()
    assert (
        resolve_weights("facebook/dinov2-base", hf_cache_dir=empty_hf_cache)
        == weights_root / "facebook--dinov2-base"
    )


def test_explicit_folder_wins(tmp_path, weights_root):
    folder = tmp_path / "my-checkpoint"
    with pytest.raises(WeightsNotFound, match="not a folder"):
        resolve_weights(str(folder))
    folder.mkdir()
    assert resolve_weights(str(folder)) == folder


def test_hugging_face_cache_is_read_offline(weights_root, empty_hf_cache):
    snapshot = fake_hf_cache(empty_hf_cache, "facebook/dino-vits8")
    assert resolve_weights("facebook/dino-vits8", hf_cache_dir=empty_hf_cache) == snapshot


@pytest.mark.parametrize("name", ["sd2", "dino-vits8", "dinov2-vitb14", "mae-vitb16"])
def test_builders_without_weights_raise_weights_not_found(name, weights_root, monkeypatch):
    # An empty default cache too, so a developer's real ~/.cache cannot make this pass.
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(weights_root / "hub"))
    with pytest.raises(WeightsNotFound, match=WEIGHTS_DIR_ENV):
        build_backbone(name, model_id="nobody/missing")


def test_this_folder_runs_offline():
    import os
    import socket

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(AssertionError, match="must not touch the network"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
