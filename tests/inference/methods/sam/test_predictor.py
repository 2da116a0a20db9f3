"""SAM, SAM 2 and SAM 3 (tracker) on tiny random checkpoints. Random masks mean nothing, so what
is checked is exact: the predictor gives what transformers' own processor + model +
``post_process_masks`` give for the same prompts, on odd image sizes of both orientations; its
candidates follow the predicted IoUs; the previous logits go back only when the prompts extend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference import Box, Click, Scribble, build_predictor
from inference.methods.sam.predictor import SamFamilyPredictor, build_sam, build_sam2
from inference.methods.sam.tiny import save_tiny
from inference.methods.sam.variants import load_folder
from inference.predictor import PredictorNotReady

FAMILIES = ("sam", "sam2", "sam3")
SIZES = [(37, 53), (53, 37)]  # (height, width): odd, landscape and portrait
PROMPTS = {
    "click": [Click(10, 20)],
    "clicks": [Click(10, 20), Click(30, 5, positive=False), Click(4, 30)],
    "box": [Box(3, 4, 30, 33)],
    "click+box": [Click(10, 20), Box(3, 4, 30, 33)],
    "box drawn backwards": [Box(30, 33, 3, 4), Click(12, 6, positive=False)],
}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """family → its tiny model loaded back from a checkpoint folder."""
    root = tmp_path_factory.mktemp("sam")
    return {f: load_folder(f, save_tiny(f, root / f)) for f in FAMILIES}


def picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def reference(loaded, image: np.ndarray, prompts):
    """transformers' own pipeline with the documented nesting of each processor: (masks K×H×W
    bool, IoU scores K, the processor's inputs)."""
    processor, model, family = loaded.processor, loaded.model, loaded.family.name
    clicks = [p for p in prompts if isinstance(p, Click)]
    boxes = [p for p in prompts if isinstance(p, Box)]
    kwargs = {}
    if clicks:
        points, labels = [[c.x, c.y] for c in clicks], [int(c.positive) for c in clicks]
        # SAM: [image, point, xy]; SAM 2/3: [image, object, point, xy]
        nested = family == "sam"
        kwargs["input_points"] = [points] if nested else [[points]]
        kwargs["input_labels"] = [labels] if nested else [[labels]]
    if boxes:
        b = boxes[-1]
        corners = [min(b.x0, b.x1), min(b.y0, b.y1), max(b.x0, b.x1), max(b.y0, b.y1)]
        kwargs["input_boxes"] = [[corners]]
    inputs = processor(images=image, return_tensors="pt", **kwargs)
    sizes = {k: inputs.pop(k) for k in ("original_sizes", "reshaped_input_sizes") if k in inputs}
    multimask = len(prompts) == 1 and bool(clicks)
    with torch.inference_mode():
        out = model(**inputs, multimask_output=multimask)
    masks = processor.post_process_masks(out.pred_masks, *sizes.values())[0][0]
    return masks.numpy(), out.iou_scores[0, 0].numpy(), inputs


class Spy:
    """Records the keyword arguments of every forward of ``model``."""

    def __init__(self, model, monkeypatch):
        self.calls: list[dict] = []
        forward = model.forward

        def spy(*args, **kwargs):
            self.calls.append(kwargs)
            return forward(*args, **kwargs)

        monkeypatch.setattr(model, "forward", spy)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("height", "width"), SIZES)
@pytest.mark.parametrize("name", list(PROMPTS))
def test_masks_equal_the_transformers_pipeline(loaded, family, height, width, name):
    image, prompts = picture(height, width), PROMPTS[name]
    predictor = SamFamilyPredictor(loaded[family])
    predictor.set_image(image)
    result = predictor.predict_prompts(prompts)
    masks, scores, _ = reference(loaded[family], image, prompts)
    order = np.argsort(-scores, kind="stable")
    assert len(result.candidates) == len(masks) == (3 if name == "click" else 1)
    for candidate, k in zip(result.candidates, order):
        assert candidate.mask.shape == (height, width) and candidate.mask.dtype == bool
        np.testing.assert_array_equal(candidate.mask, masks[k])
        assert candidate.score == pytest.approx(float(scores[k]))
    assert 0 < masks.mean() < 1  # the tiny models give masks with both values: a real check


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("height", "width"), SIZES)
def test_points_and_boxes_reach_the_model_as_the_processor_scales_them(
    loaded, family, height, width, monkeypatch
):
    image = picture(height, width, seed=1)
    prompts = [Click(0, 0), Click(width - 1, height - 1, positive=False), Box(2, 3, 35, 36)]
    predictor = SamFamilyPredictor(loaded[family])
    predictor.set_image(image)
    spy = Spy(loaded[family].model, monkeypatch)
    predictor.predict_prompts(prompts)
    _, _, inputs = reference(loaded[family], image, prompts)
    sent = spy.calls[0]
    for key in ("input_points", "input_labels", "input_boxes"):
        assert sent[key].dtype == inputs[key].dtype, key
        torch.testing.assert_close(sent[key], inputs[key], rtol=0, atol=0)
    # the far corner lands on the far edge of the model's frame along the longer side
    side = loaded[family].model.config.prompt_encoder_config.image_size
    far = sent["input_points"][0, 0, 1]
    assert float(far.max()) == pytest.approx(side * (max(height, width) - 1) / max(height, width))


@pytest.mark.parametrize("family", FAMILIES)
def test_candidates_are_ranked_by_predicted_iou(loaded, family):
    predictor = SamFamilyPredictor(loaded[family])
    predictor.set_image(picture(37, 53))
    for x, y in [(10, 20), (40, 5), (25, 30)]:
        result = predictor.predict_prompts([Click(x, y)], object_id=x)
        scores = [c.score for c in result.candidates]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)
        assert result.score == scores[0] and result.mask is result.candidates[0].mask
    two = predictor.predict_prompts([Click(10, 20), Click(40, 5)])
    assert len(two.candidates) == 1 and two.score == two.candidates[0].score


@pytest.mark.parametrize("family", FAMILIES)
def test_previous_logits_go_back_only_when_the_prompts_extend(loaded, family, monkeypatch):
    predictor = SamFamilyPredictor(loaded[family])
    predictor.set_image(picture(53, 37))
    spy = Spy(loaded[family].model, monkeypatch)
    a, b, c = Click(10, 20), Click(30, 5, positive=False), Click(5, 40)

    first = predictor.predict_prompts([a])
    assert "input_masks" not in spy.calls[-1]
    (step,) = predictor.get_state()[1]
    best = int(torch.argmax(step.scores))
    assert first.score == pytest.approx(float(step.scores[best]))

    predictor.predict_prompts([a, b])  # extends [a]: a's best low-resolution logits go back
    prior = spy.calls[-1]["input_masks"]
    assert prior.shape == (1, 1, *step.logits.shape[-2:])
    torch.testing.assert_close(prior, step.logits[best][None, None])

    predictor.predict_prompts([b, a])  # the same clicks in another order: not an extension
    assert "input_masks" not in spy.calls[-1]
    predictor.predict_prompts([c])  # a new list
    assert "input_masks" not in spy.calls[-1]
    calls = len(spy.calls)
    predictor.predict_prompts([c])  # the same list again: the remembered answer, no model call
    assert len(spy.calls) == calls

    # a box replaced by another: [a, box2] extends [a], not [a, box1]
    box1, box2 = Box(2, 2, 20, 30), Box(5, 6, 33, 50)
    predictor.predict_prompts([a], object_id=2)
    predictor.predict_prompts([a, box1], object_id=2)
    predictor.predict_prompts([a, box1, box2], object_id=2)
    (a_step, *_), sent = predictor.get_state()[2], spy.calls[-1]
    torch.testing.assert_close(
        sent["input_masks"], a_step.logits[int(a_step.scores.argmax())][None, None]
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_undo_gives_back_the_earlier_mask_and_its_logits(loaded, family, monkeypatch):
    predictor = SamFamilyPredictor(loaded[family])
    predictor.set_image(picture(37, 53))
    a, b, c = Click(10, 20), Click(30, 5, positive=False), Click(40, 30)
    one = predictor.predict_prompts([a])
    saved = predictor.get_state()
    two = predictor.predict_prompts([a, b])
    predictor.predict_prompts([a, b, c])

    predictor.set_state(saved)  # undo twice
    assert len(predictor.get_state()[1]) == 1
    spy = Spy(loaded[family].model, monkeypatch)
    again = predictor.predict_prompts([a])
    assert not spy.calls and np.array_equal(again.mask, one.mask) and again.score == one.score
    redo = predictor.predict_prompts([a, b])  # from [a]'s logits, as the first time
    np.testing.assert_array_equal(redo.mask, two.mask)
    assert redo.score == pytest.approx(two.score)

    # the platform's undo replays the log without set_state: a prefix gives its own answer
    predictor.predict_prompts([a, b, c])
    calls = len(spy.calls)
    back = predictor.predict_prompts([a, b])
    assert len(spy.calls) == calls and np.array_equal(back.mask, two.mask)

    predictor.set_state(None)
    predictor.predict_prompts([a, b])
    assert "input_masks" not in spy.calls[-1]


def test_objects_are_answered_from_their_own_prompts_and_the_background_clicks(loaded):
    predictor = SamFamilyPredictor(loaded["sam2"])
    predictor.set_image(picture(37, 53))
    box = Box(3, 4, 30, 33, object_id=2)
    prompts = [
        Click(10, 20, object_id=1),
        Click(40, 10, positive=True, object_id=0),  # a background click: negative for all
        box,
        Box(0, 0, 50, 36, object_id=0),  # a background box says nothing: ignored
        Click(20, 25, positive=False, object_id=3),  # an object with no positive prompt
    ]
    out = predictor.predict_objects(prompts)
    assert sorted(out) == [1, 2, 3] and not out[3].mask.any()
    alone = SamFamilyPredictor(loaded["sam2"])
    alone.set_image(picture(37, 53))
    negative = Click(40, 10, positive=False, object_id=0)
    expected_1 = alone.predict_prompts([Click(10, 20), negative])
    expected_2 = alone.predict_prompts([negative, box], object_id=2)
    np.testing.assert_array_equal(out[1].mask, expected_1.mask)
    np.testing.assert_array_equal(out[2].mask, expected_2.mask)
    # the contract's predict(clicks) is the same reading
    np.testing.assert_array_equal(alone.predict([Click(10, 20), negative]).mask, expected_1.mask)


def test_state_nbytes_counts_the_embeddings_not_the_model(loaded):
    # the interactive worker's cache measure (a platform module, but numpy/torch only)
    from annotation.segmentation.interactive.cache import state_nbytes

    for family in FAMILIES:
        predictor = SamFamilyPredictor(loaded[family])
        before = state_nbytes(predictor)
        predictor.set_image(picture(37, 53))
        embeddings = predictor._embeddings
        levels = embeddings if isinstance(embeddings, list) else [embeddings]
        expected = sum(t.numel() * t.element_size() for t in levels)
        assert expected > 0 and state_nbytes(predictor) - before == expected, family
        weights = sum(p.numel() * p.element_size() for p in loaded[family].model.parameters())
        assert state_nbytes(predictor) < weights
        predictor.predict_prompts([Click(10, 20)])  # remembered logits count too
        assert state_nbytes(predictor) > before + expected


def test_a_loaded_model_is_shared_and_must_be_of_the_family(loaded):
    first = build_sam(backbone=loaded["sam"])
    second = build_predictor("sam", backbone=first.backbone)  # as the worker shares it
    assert second.backbone is first.backbone and second is not first
    with pytest.raises(ValueError, match="sam2 model cannot serve sam"):
        build_sam(backbone=loaded["sam2"])
    tiny = build_sam2(backbone="tiny")  # random weights in memory, for platform tests
    tiny.set_image(picture(20, 30))
    assert tiny.predict([Click(3, 4)]).mask.shape == (20, 30)


def test_inputs_are_checked(loaded):
    predictor = SamFamilyPredictor(loaded["sam"])
    with pytest.raises(PredictorNotReady):
        predictor.predict_prompts([Click(1, 1)])
    predictor.set_image(picture(37, 53))
    with pytest.raises(ValueError, match="outside the 53×37 image"):
        predictor.predict_prompts([Box(0, 0, 54, 10)])
    with pytest.raises(ValueError, match="outside"):
        predictor.predict([Click(53, 0)])
    with pytest.raises(ValueError, match="at least one click or a box"):
        predictor.predict_prompts([])
    with pytest.raises(TypeError, match="not 'scribble'"):
        predictor.predict_prompts([Scribble(((1.0, 1.0),))])
    predictor.reset()
    with pytest.raises(PredictorNotReady):
        predictor.predict_prompts([Click(1, 1)])
