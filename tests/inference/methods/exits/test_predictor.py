import numpy as np
import pytest
import torch

from inference.methods.exits.generator import build_generator, load_generator, save_generator
from inference.methods.exits.predictor import ExitsPredictor, extreme_points_from_clicks
from inference.registry import (
    build_predictor,
    convert_trained,
    list_methods,
    load_trained,
    method_info,
)
from inference.structures import Box, Click, ExtremePoints


def _image():
    image = np.full((80, 100, 3), 120, np.uint8)
    image[20:60, 30:70] = (250, 30, 30)
    return image


CLICKS = [Click(50, 20), Click(30, 40), Click(69, 41), Click(49, 59)]  # top, left, right, bottom


def test_clicks_in_any_order_name_the_extreme_points():
    p = extreme_points_from_clicks(CLICKS[::-1] + [Click(1, 1, positive=False)])
    assert p.left == (30, 40) and p.right == (69, 41) and p.top == (50, 20) and p.bottom == (49, 59)
    assert extreme_points_from_clicks(CLICKS[:3]) is None


def test_registered_method_without_checkpoint_falls_back_to_grabcut():
    assert "exits" in list_methods()
    with pytest.warns(UserWarning, match="GrabCut"):
        predictor = build_predictor("exits")
    predictor.set_image(_image())
    assert not predictor.predict(CLICKS[:3]).mask.any()
    mask = predictor.predict(CLICKS).mask
    truth = np.zeros((80, 100), bool)
    truth[20:60, 30:70] = True
    assert (mask & truth).sum() / (mask | truth).sum() > 0.8
    for c in CLICKS:
        assert mask[int(c.y), int(c.x)]


def test_saved_generator_reloads_identically(tmp_path):
    model = build_generator("tiny-conv", seed=3)
    path = tmp_path / "gen.safetensors"
    save_generator(model, path, crop_size=64, mask_threshold=0.4)
    loaded, config = load_generator(path)
    assert config == {"encoder": "tiny-conv", "crop_size": 64, "mask_threshold": 0.4}
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(model.eval()(x), loaded(x))
    predictor = build_predictor("exits", checkpoint=str(path))
    assert predictor.crop_size == 64 and predictor.mask_threshold == 0.4
    predictor.set_image(_image())
    result = predictor.predict(CLICKS)
    assert result.mask.shape == (80, 100) and result.score is not None
    assert not result.mask[:, :29].any(), "nothing outside the box"
    other = ExitsPredictor(None)
    other.load_generator(path)
    other.save_generator(tmp_path / "again.safetensors")


def test_predict_objects_reads_extreme_points_and_boxes():
    with pytest.warns(UserWarning, match="GrabCut"):
        predictor = build_predictor("exits")
    predictor.set_image(_image())
    points = ExtremePoints.from_points([(c.x, c.y) for c in CLICKS], object_id=1)
    old = ExtremePoints.from_points([(1, 1), (2, 1), (1, 2), (2, 2)], object_id=1)
    masks = predictor.predict_objects(
        [
            old,
            points,
            Box(30, 20, 70, 60, object_id=2),
            *[Click(c.x, c.y, object_id=3) for c in [Click(5, 5), *CLICKS]],
        ]
    )
    assert sorted(masks) == [1, 2, 3]
    # object 1 from its newest extreme points, object 3 from its last four clicks: as predict()
    expected = predictor.predict(CLICKS).mask
    assert np.array_equal(masks[1].mask, expected) and np.array_equal(masks[3].mask, expected)
    truth = np.zeros((80, 100), bool)
    truth[20:60, 30:70] = True
    assert (masks[2].mask & truth).sum() / (masks[2].mask | truth).sum() > 0.8
    few = predictor.predict_objects([Click(50, 20, object_id=4)])
    assert not few[4].mask.any()


def test_trained_generator_converts_and_loads_through_the_registry(tmp_path):
    assert method_info("exits").trained.suffixes == (".safetensors",)
    source = tmp_path / "upload.safetensors"
    save_generator(build_generator("tiny-conv", seed=1), source, crop_size=64, mask_threshold=0.4)
    config = convert_trained("exits", source, tmp_path / "converted.safetensors", {})
    assert config == {"encoder": "tiny-conv", "crop_size": 64, "mask_threshold": 0.4}
    predictor = load_trained("exits", tmp_path / "converted.safetensors", config, "cpu")
    assert isinstance(predictor, ExitsPredictor) and predictor.crop_size == 64
    again = load_trained("exits", tmp_path / "converted.safetensors", config, "cpu")
    assert again.generator is predictor.generator  # loaded once, shared
    with pytest.raises(ValueError, match="safetensors"):
        convert_trained("exits", tmp_path / "upload.pth", tmp_path / "x.safetensors", {})


@pytest.mark.gpu
def test_amp_generation_matches_fp32_on_cuda():
    from inference.methods.exits.train import predict_probabilities

    model = build_generator("tiny-conv", seed=0).to("cuda").eval()
    crops = np.random.default_rng(0).integers(0, 255, size=(4, 64, 64, 3), dtype=np.uint8)
    full = predict_probabilities(model, crops, device="cuda")
    half = predict_probabilities(model, crops, device="cuda", amp=True)
    assert np.abs(full - half).max() < 1e-2
