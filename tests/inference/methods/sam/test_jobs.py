"""SAM 3's ``text_masks`` batch job (``sam3_text``) on a tiny random checkpoint: its entry point
gives, per label in the order asked, exactly what ``TextFinder.find`` gives."""

from __future__ import annotations

import numpy as np
import pytest

from inference import registry
from inference.jobs import CAPABILITIES, TextMasks
from inference.methods.sam import TEXT_MASKS
from inference.methods.sam.jobs import text_masks
from inference.methods.sam.text import TextFinder
from inference.methods.sam.text_tiny import save_tiny_sam3
from inference.weights import WEIGHTS_DIR_ENV, WeightsNotFound


@pytest.fixture(scope="module")
def weights_root(tmp_path_factory):
    """A weights folder holding a tiny SAM 3 where ``facebook/sam3`` resolves."""
    root = tmp_path_factory.mktemp("weights")
    save_tiny_sam3(root / "facebook--sam3")
    return root


def picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_sam3_declares_the_job_and_the_others_do_not():
    infos = {info.name: info for info in registry.method_infos()}
    assert infos["sam3"].batch == (TEXT_MASKS,)
    assert infos["sam"].batch == () and infos["sam2"].batch == ()
    assert TEXT_MASKS.kind == "sam3_text" and TEXT_MASKS.capability == "text_masks"
    assert "text_masks" in CAPABILITIES
    assert TEXT_MASKS.parse({}) == {
        "checkpoint": "facebook/sam3",
        "score_threshold": 0.5,
        "max_per_label": 50,
    }
    # the checkpoint is a choice, never a path a launcher could point at
    with pytest.raises(ValueError, match="checkpoint must be one of facebook/sam3"):
        TEXT_MASKS.parse({"checkpoint": "/etc"})


def test_entry_gives_find_per_label_in_order(weights_root, monkeypatch):
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(weights_root))
    image = picture(45, 61)
    texts = ["red car", "a person"]
    reference = TextFinder.from_folder(weights_root / "facebook--sam3")
    reference.set_image(image)
    # random weights score near 0.25: a threshold that keeps some instances and drops others
    all_scores = [r.score for t in texts for r in reference.find(t, threshold=0.0)]
    threshold = float(np.median(all_scores))
    params = TEXT_MASKS.parse({"score_threshold": threshold, "max_per_label": 3})
    job = TEXT_MASKS.entry()(params, "cpu")
    assert isinstance(job, TextMasks) and job.model_name == "facebook/sam3"

    found = job.find(image, texts, 0)
    expected = [
        (text, r.mask, r.score)
        for text in texts
        for r in reference.find(text, threshold=threshold, max_instances=3)
        if r.mask.any()
    ]
    assert len(found) == len(expected) > 0
    assert [t for t, _, _ in found] == [t for t, _, _ in expected]
    assert {t for t, _, _ in found} == set(texts)  # both labels found something
    for (text, mask, score), (_, want_mask, want_score) in zip(found, expected, strict=True):
        assert mask.shape == (45, 61) and mask.dtype == bool and mask.any()
        np.testing.assert_array_equal(mask, want_mask)
        assert score == pytest.approx(want_score, abs=1e-6) and score > threshold
    for text in texts:  # best first within each label, at most max_per_label
        scores = [s for t, _, s in found if t == text]
        assert scores == sorted(scores, reverse=True) and len(scores) <= 3
    # the same finder serves the next image: its own masks, not the first image's
    other = job.find(picture(45, 61, seed=1), texts, 1)
    reference.set_image(picture(45, 61, seed=1))
    first = reference.find(texts[0], threshold=threshold, max_instances=3)
    np.testing.assert_array_equal(other[0][1], first[0].mask)


def test_missing_weights_raise_weights_not_found_naming_the_id(tmp_path, monkeypatch):
    import huggingface_hub.constants

    # an empty weights folder and hub cache, so a developer's real cache cannot make this pass
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(WeightsNotFound, match="facebook/sam3") as caught:
        text_masks(TEXT_MASKS.parse({}), "cpu")
    assert str(tmp_path / "facebook--sam3") in str(caught.value)
