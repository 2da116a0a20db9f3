"""SAM 3 text prompts on a tiny random checkpoint: what can be exact with random weights is
that ``find`` gives what transformers' own processor + model + post-processing give, at the
image's size, encoding the image once for any number of labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.methods.sam.text import MAX_TEXT_CHARS, TextFinder
from inference.methods.sam.text_tiny import TINY_QUERIES, save_tiny_sam3
from inference.predictor import PredictorNotReady
from inference.weights import WEIGHTS_DIR_ENV, WeightsNotFound


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_tiny_sam3(tmp_path_factory.mktemp("sam3") / "facebook--sam3")


@pytest.fixture(scope="module")
def loaded(tiny_folder):
    return TextFinder.from_folder(tiny_folder)


@pytest.fixture
def finder(loaded):
    """A fresh finder (no image, no cached text) on the module's loaded model and processor."""
    return TextFinder(loaded.model, loaded.processor)


def picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def reference(finder: TextFinder, image: np.ndarray, text: str, threshold: float):
    """transformers' own pipeline: processor(image, text) → model → instance post-processing,
    ordered by score (stable, as ``find`` orders); (masks K×H×W bool, scores K)."""
    processor, model = finder.processor, finder.model
    inputs = processor(images=image, text=text, return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    result = processor.post_process_instance_segmentation(
        outputs, threshold=threshold, mask_threshold=0.5, target_sizes=[image.shape[:2]]
    )[0]
    order = torch.sort(result["scores"], descending=True, stable=True).indices
    return result["masks"][order].bool().numpy(), result["scores"][order].numpy()


@pytest.mark.parametrize(("height", "width"), [(37, 53), (53, 37)])
@pytest.mark.parametrize("text", ["a person", "red car"])
def test_find_equals_transformers_pipeline(finder, height, width, text):
    image = picture(height, width)
    finder.set_image(image)
    # every query (random scores sit near 0.25), then the upper half of them
    for threshold in (0.0, float(np.median(reference(finder, image, text, 0.0)[1]))):
        masks, scores = reference(finder, image, text, threshold)
        found = finder.find(text, threshold=threshold)
        assert len(found) == len(masks) > 0
        assert [r.score for r in found] == pytest.approx(scores.tolist(), abs=1e-6)
        for result, mask in zip(found, masks, strict=True):
            assert result.mask.shape == (height, width) and result.mask.dtype == bool
            np.testing.assert_array_equal(result.mask, mask)
    assert found[0].mask.any() and not found[0].mask.all()  # a real mask, not a constant


def test_image_encoded_once_for_many_labels_and_each_label_encoded_once(finder):
    calls = {"vision": 0, "text": 0}

    def count(name):
        def hook(*_):
            calls[name] += 1

        return hook

    hooks = [
        finder.model.vision_encoder.register_forward_hook(count("vision")),
        finder.model.text_encoder.register_forward_hook(count("text")),
    ]
    try:
        finder.set_image(picture(40, 30))
        cats = finder.find("cat", threshold=0.0)
        dogs = finder.find("dog", threshold=0.0)
        assert calls == {"vision": 1, "text": 2}
        assert [r.score for r in cats] != [r.score for r in dogs]  # the text reaches the decoder
        finder.set_image(picture(30, 40, seed=1))  # a new image: its own encoding, same labels
        again = finder.find("cat", threshold=0.0)
        assert calls == {"vision": 2, "text": 2}
        assert [r.score for r in again] != [r.score for r in cats]
    finally:
        for hook in hooks:
            hook.remove()


@pytest.mark.parametrize(("height", "width"), [(3, 3), (1, 7), (61, 2)])
def test_tiny_images_keep_their_size(finder, height, width):
    # 3×3×3 could be read as channels first; set_image says channels last
    finder.set_image(picture(height, width))
    found = finder.find("thing", threshold=0.0)
    assert len(found) == TINY_QUERIES
    assert {r.mask.shape for r in found} == {(height, width)}


def test_threshold_and_max_instances(finder):
    finder.set_image(picture(45, 45))
    everything = finder.find("person", threshold=0.0, max_instances=100)
    scores = [r.score for r in everything]
    assert len(everything) == TINY_QUERIES
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    cut = (scores[2] + scores[3]) / 2
    above = finder.find("person", threshold=cut)
    assert [r.score for r in above] == scores[:3]
    top = finder.find("person", threshold=0.0, max_instances=2)
    assert [r.score for r in top] == scores[:2]
    for a, b in zip(top, everything, strict=False):
        np.testing.assert_array_equal(a.mask, b.mask)
    assert finder.find("person", threshold=1.0) == []
    assert finder.find("person", threshold=0.0, max_instances=0) == []
    assert "predict" in everything[0].timings


def test_mask_threshold_grows_or_shrinks_masks(finder):
    finder.set_image(picture(33, 21))
    loose = finder.find("tree", threshold=0.0, mask_threshold=0.2)
    strict = finder.find("tree", threshold=0.0, mask_threshold=0.8)
    for a, b in zip(loose, strict, strict=True):
        assert (b.mask <= a.mask).all()  # a stricter cut keeps a subset of pixels
    assert sum(a.mask.sum() for a in loose) > sum(b.mask.sum() for b in strict)


def test_text_is_checked(finder):
    finder.set_image(picture(20, 20))
    for bad in ("", "   ", "x" * (MAX_TEXT_CHARS + 1)):
        with pytest.raises(ValueError):
            finder.find(bad)
    # the longest text allowed is more than 32 tokens: cut to the text encoder's length
    assert len(finder.find("y" * MAX_TEXT_CHARS, threshold=0.0)) == TINY_QUERIES


def test_find_needs_an_image_and_images_are_checked(finder):
    with pytest.raises(PredictorNotReady):
        finder.find("person")
    for bad in (np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32)):
        with pytest.raises(ValueError, match="H×W×3 uint8"):
            finder.set_image(bad)


def test_from_id_reads_the_weights_folder(tiny_folder):
    finder = TextFinder.from_id("facebook/sam3", root=tiny_folder.parent)
    finder.set_image(picture(9, 11))
    assert finder.find("x", threshold=0.0)[0].mask.shape == (9, 11)


def test_missing_checkpoint_names_the_model(tmp_path, monkeypatch):
    import huggingface_hub.constants

    # an empty weights folder and hub cache, so a developer's real cache cannot make this pass
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(WeightsNotFound, match="facebook/sam3"):
        TextFinder.from_id()
