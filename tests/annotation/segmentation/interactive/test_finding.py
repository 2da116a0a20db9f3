"""Find all on the worker (``interactive.finding``), in process on a tiny random SAM 3: one finder
per (method, backbone) in the worker's models, the image read as a click's is (its longest side
bounded) and encoded once for any number of labels, masks back at the stored image's size as
stored RLE, exactly what SAM 3's finder gives on that image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from annotation.common import rle
from annotation.datasets.storage import read_rgb
from annotation.segmentation.interactive import finding, worker
from annotation.segmentation.interactive.compute import to_image_size
from tests.factories import add_images, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def weights_root(tmp_path_factory):
    """A weights folder where ``facebook/sam3`` resolves to a tiny random SAM 3."""
    from inference.methods.sam.text_tiny import save_tiny_sam3

    root = tmp_path_factory.mktemp("weights")
    save_tiny_sam3(root / "facebook--sam3")
    return root


@pytest.fixture
def fresh_worker(monkeypatch, weights_root, settings):
    """This process as a worker that has built nothing yet, with the tiny SAM 3 on its disk;
    returns a function giving the shapes of the images its finder encoded, in order."""
    from inference.methods.sam.text import TextFinder
    from inference.weights import WEIGHTS_DIR_ENV

    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(weights_root))
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "INTERACTIVE_DEVICE": "cpu"}
    monkeypatch.setattr(worker._state, "models", None)
    monkeypatch.setattr(finding, "_encoded", {})
    encoded: list[tuple[object, tuple[int, ...]]] = []
    real = TextFinder.set_image

    def counting(self, image):
        encoded.append((self, image.shape))
        return real(self, image)

    monkeypatch.setattr(TextFinder, "set_image", counting)

    def by_the_worker() -> list[tuple[int, ...]]:
        held = worker.models().text_finder("sam3", "sam3")
        return [shape for finder, shape in encoded if finder is held]

    return by_the_worker


def _expected(weights_root, rgb: np.ndarray, text: str, size_hw: tuple[int, int]):
    """(stored RLE, score) of what SAM 3's finder gives for ``text`` on ``rgb`` (the working
    image), each mask at ``size_hw``, empty ones left out."""
    from inference.methods.sam.text import TextFinder

    finder = TextFinder.from_folder(weights_root / "facebook--sam3")
    finder.set_image(rgb)
    out = []
    for result in finder.find(text, threshold=0.0, max_instances=5):
        mask = to_image_size(result.mask, size_hw)
        if mask.any():
            out.append((rle.encode(mask), result.score))
    return out


def _find(image, text: str):
    return finding.find(
        image.id,
        "sam3",
        "sam3",
        text,
        size_hw=(image.height, image.width),
        threshold=0.0,
        max_instances=5,
    )


def test_labels_of_one_image_cost_one_encoding(fresh_worker, weights_root):
    w = make_world()
    first, second = w.assigned_image, w.other_image
    before = finding.encodings
    bird = _find(first, "bird")
    cat = _find(first, "cat")
    assert (bird.encoded, cat.encoded) == (True, False) and len(fresh_worker()) == 1
    assert finding.encodings == before + 1
    assert bird.model_s > 0 and cat.model_s > 0
    rgb = read_rgb(first.file)
    for found, text in ((bird, "bird"), (cat, "cat")):
        expected = _expected(weights_root, rgb, text, (first.height, first.width))
        assert found.masks == [m for m, _ in expected] and len(found.masks) > 0
        assert found.scores == pytest.approx([s for _, s in expected], abs=1e-6)
    # the finder is built once and kept in the worker's models
    assert worker.models().text_finder("sam3", "sam3") is worker.models().text_finder(
        "sam3", "sam3"
    )

    # another image is encoded; back to the first, it is encoded again (one image is held)
    assert _find(second, "bird").encoded and _find(first, "bird").encoded
    assert len(fresh_worker()) == 3


def test_a_large_image_is_found_at_the_working_size_and_masks_come_back_full_size(
    fresh_worker, weights_root, settings
):
    w = make_world()
    (image,) = add_images(w.dataset, 1, start_seed=41)  # 64×48
    settings.MASKWRIGHT = {**settings.MASKWRIGHT, "INTERACTIVE_MAX_SIDE": 32}
    found = _find(image, "bird")
    assert fresh_worker() == [(24, 32, 3)]  # what the finder saw: the longest side bounded
    working = np.array(
        PILImage.fromarray(read_rgb(image.file)).resize((32, 24), PILImage.Resampling.BILINEAR)
    )
    expected = _expected(weights_root, working, "bird", (48, 64))
    assert found.masks == [m for m, _ in expected] and len(found.masks) > 0
    assert all(m["size"] == [48, 64] for m in found.masks)


def test_a_missing_checkpoint_fails_with_the_id_and_the_folder(monkeypatch, tmp_path, settings):
    import huggingface_hub.constants

    from inference.weights import WEIGHTS_DIR_ENV, WeightsNotFound

    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(worker._state, "models", None)
    w = make_world()
    with pytest.raises(WeightsNotFound, match="facebook/sam3") as caught:
        _find(w.assigned_image, "bird")
    assert str(tmp_path / "facebook--sam3") in str(caught.value)
