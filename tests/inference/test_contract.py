"""The predictor contract and the registry, on a small real predictor (nearest colour)."""

from __future__ import annotations

import numpy as np
import pytest

from inference import Click, MaskResult, Predictor, PredictorNotReady, build_predictor, list_methods
from inference.registry import _BUILDERS, register_method


class ColourPredictor(Predictor):
    """Pixels whose colour is nearer the positive clicks' than the negative clicks'."""

    def _set_image(self, image):
        self.image = image.astype(np.float32)

    def _predict(self, clicks):
        def dist(c):
            return np.linalg.norm(self.image - self.image[int(c.y), int(c.x)], axis=2)

        pos = np.min([dist(c) for c in clicks if c.positive], axis=0)
        neg = [dist(c) for c in clicks if not c.positive]
        mask = pos < (np.min(neg, axis=0) if neg else 30.0)
        return MaskResult(mask=mask, score=None)


@pytest.fixture
def registered():
    register_method("colour-test")(lambda device="cpu", **kw: ColourPredictor())
    yield
    _BUILDERS.pop("colour-test")


def test_contract_on_a_real_predictor(registered):
    assert "colour-test" in list_methods()
    p = build_predictor("colour-test")
    with pytest.raises(PredictorNotReady):
        p.predict([Click(x=1, y=1)])
    img = np.zeros((20, 30, 3), dtype=np.uint8)
    img[:, 15:] = 200
    p.set_image(img)
    result = p.predict([Click(x=20, y=5, positive=True), Click(x=2, y=2, positive=False)])
    assert (
        result.mask.shape == (20, 30)
        and result.mask[:, 15:].all()
        and not result.mask[:, :15].any()
    )
    with pytest.raises(ValueError, match="outside the 30×20 image"):
        p.predict([Click(x=30, y=0)])
    with pytest.raises(ValueError, match="H×W×3 uint8"):
        p.set_image(np.zeros((4, 4), dtype=np.uint8))
    p.reset()
    with pytest.raises(PredictorNotReady):
        p.predict([Click(x=1, y=1)])


def test_unknown_method_names_the_known_ones():
    with pytest.raises(KeyError, match="unknown method 'nope'"):
        build_predictor("nope")


def test_mask_result_checks_its_mask():
    with pytest.raises(ValueError):
        MaskResult(mask=np.zeros((3, 3), dtype=np.uint8))


def test_a_method_that_does_not_refine_refuses_a_prior_and_ignores_a_prior_mask_prompt():
    from inference import Click, PriorMask
    from inference.predictor import Predictor
    from inference.structures import MaskResult

    class Plain(Predictor):
        def _set_image(self, image):
            pass

        def _predict(self, clicks):
            return MaskResult(mask=np.ones(self.image_size, dtype=bool))

    plain = Plain()
    plain.set_image(np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="does not refine"):
        plain.predict([Click(x=1, y=1)], prior=np.zeros((4, 5), bool))
    out = plain.predict_objects([PriorMask(np.zeros((4, 5), bool)), Click(x=1, y=1)])
    assert out[1].mask.all()


def test_a_prior_mask_scales_to_the_working_size_by_nearest_neighbour():
    from inference import PriorMask

    mask = np.zeros((4, 6), bool)
    mask[:2, :3] = True
    small = PriorMask(mask, object_id=3).scaled(0.5, 2, 3)
    assert small.object_id == 3 and small.mask.tolist() == [[True, False, False], [False] * 3]
    with pytest.raises(ValueError, match="H×W"):
        PriorMask(np.zeros((2, 2, 3), bool))
