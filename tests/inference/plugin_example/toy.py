"""A method registered from outside the library, as a plugin would (see test_registry.py)."""

import numpy as np

from inference import MaskResult, MethodInfo, Predictor, register_method


class EverythingPredictor(Predictor):
    """Every pixel is the object once there is a positive click."""

    def _set_image(self, image):
        pass

    def _predict(self, clicks):
        return MaskResult(mask=np.full(self.image_size, any(c.positive for c in clicks)))


def build_everything(device="cpu", backbone=None, **kwargs):
    return EverythingPredictor()


register_method(
    MethodInfo(
        name="toy-everything",
        label="Everything (toy)",
        prompts=("click", "box"),
        summary="a plugin test method",
    ),
    builder="tests.inference.plugin_example.toy:build_everything",
)
