import numpy as np
import pytest
import torch

from inference.methods.exits.generator import build_generator, load_generator, save_generator
from inference.methods.exits.predictor import ExitsPredictor, extreme_points_from_clicks
from inference.registry import build_predictor, list_methods
from inference.structures import Click


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


@pytest.mark.gpu
def test_amp_generation_matches_fp32_on_cuda():
    from inference.methods.exits.train import predict_probabilities

    model = build_generator("tiny-conv", seed=0).to("cuda").eval()
    crops = np.random.default_rng(0).integers(0, 255, size=(4, 64, 64, 3), dtype=np.uint8)
    full = predict_probabilities(model, crops, device="cuda")
    half = predict_probabilities(model, crops, device="cuda", amp=True)
    assert np.abs(full - half).max() < 1e-2
