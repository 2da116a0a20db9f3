"""SALT and MIS run on every backbone of the registry (its tiny random-weight twin)."""

import numpy as np
import pytest

from inference import Click, Scribble, build_predictor

TINY = ["tiny-effnet", "tiny-dino", "tiny-dinov2", "tiny-mae", "tiny-sd2"]


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(0).random((96, 128, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("backbone", TINY)
def test_salt_labels_every_prompted_object(backbone, image):
    p = build_predictor("salt", backbone=backbone)
    p.set_image(image)
    result = p.segment(
        [
            Scribble(((20.0, 20.0),), 1, object_id=1, label=1),
            Scribble(((100.0, 70.0),), 1, object_id=1, label=2),
            Scribble(((5.0, 90.0),), 1, positive=False, object_id=0),
        ]
    )
    assert result.labels.shape == (96, 128) and result.objects == [(1, 1), (2, 1)]
    assert set(np.unique(result.labels)) <= {0, 1, 2}


@pytest.mark.parametrize("backbone", TINY)
def test_mis_selects_a_node_containing_the_click(backbone, image):
    p = build_predictor("mis", backbone=backbone, refine_band=0)
    p.set_image(image)
    mask = p.predict([Click(x=60, y=40)]).mask
    assert mask.shape == (96, 128) and mask[40, 60]
