"""A prior mask refined by SAM, SAM 2 and SAM 3 (tracker): it reaches the model as the dense mask
prompt, mapped into the model's frame as the image is. Checked exactly on tiny random
checkpoints (the wrapper's mask equals transformers' model called with the same ``input_masks``)
and geometrically at the real models' frames (a prior read straight back is itself)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from inference import PRIOR_KIND, Click, PriorMask, method_info
from inference.methods.sam.predictor import SamFamilyPredictor
from inference.methods.sam.prior import PRIOR_LOGIT, ModelFrame, mask_input_side, prior_key
from inference.methods.sam.tiny import save_tiny
from inference.methods.sam.variants import load_folder
from tests.inference.methods.sam.test_predictor import Spy  # records the model's forwards

FAMILIES = ("sam", "sam2", "sam3")
SIZES = [(37, 53), (53, 37)]  # (height, width): odd, landscape and portrait
CLICKS = [Click(10, 20), Click(30, 5, positive=False)]  # inside both orientations


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """family → its tiny model loaded back from a checkpoint folder."""
    root = tmp_path_factory.mktemp("sam-prior")
    return {f: load_folder(f, save_tiny(f, root / f)) for f in FAMILIES}


def picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def shapes(height: int, width: int) -> dict[str, np.ndarray]:
    """Named H×W bool masks: an ellipse, a rectangle, a ring (a hole to keep)."""
    yy, xx = np.mgrid[:height, :width]
    ellipse = ((yy - 0.45 * height) / (0.3 * height)) ** 2 + (
        (xx - 0.55 * width) / (0.25 * width)
    ) ** 2 < 1
    hole = ((yy - 0.45 * height) / (0.15 * height)) ** 2 + (
        (xx - 0.55 * width) / (0.12 * width)
    ) ** 2 < 1
    rect = np.zeros((height, width), dtype=bool)
    rect[height // 5 : 3 * height // 4, width // 7 : width // 2] = True
    return {"ellipse": ellipse, "rectangle": rect, "ring": ellipse & ~hole}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def frame_from_processor(loaded, image: np.ndarray) -> ModelFrame:
    """The frame built from what transformers' processor reports for ``image`` (not from the
    predictor): SAM's resized size, SAM 2 / 3's square target."""
    processor, family = loaded.processor, loaded.family
    inputs = processor(images=image, return_tensors="pt")
    if family.needs_reshaped_size:
        resized = tuple(int(v) for v in inputs["reshaped_input_sizes"][0])
    else:
        resized = (int(processor.target_size),) * 2
    return ModelFrame.of(
        processor,
        pads=family.needs_reshaped_size,
        image_hw=image.shape[:2],
        resized_hw=resized,
        mask_side=mask_input_side(loaded.model.config.prompt_encoder_config),
    )


def reference(loaded, image: np.ndarray, clicks, input_masks: torch.Tensor):
    """transformers' processor + model (with ``input_masks``, one mask) + post-processing:
    (mask H×W bool, IoU score)."""
    processor, model = loaded.processor, loaded.model
    points, labels = [[c.x, c.y] for c in clicks], [int(c.positive) for c in clicks]
    nested = loaded.family.name == "sam"  # SAM: [image, point, xy]; SAM 2/3: one more level
    inputs = processor(
        images=image,
        input_points=[points] if nested else [[points]],
        input_labels=[labels] if nested else [[labels]],
        return_tensors="pt",
    )
    sizes = {k: inputs.pop(k) for k in ("original_sizes", "reshaped_input_sizes") if k in inputs}
    with torch.inference_mode():
        out = model(**inputs, input_masks=input_masks, multimask_output=False)
    masks = processor.post_process_masks(out.pred_masks, *sizes.values())[0][0]
    return masks.numpy()[0], float(out.iou_scores[0, 0, 0])


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("family", FAMILIES)
def test_the_prior_is_the_mask_prompt_and_the_mask_equals_transformers(
    loaded, family, height, width, monkeypatch
):
    image = picture(height, width)
    prior = shapes(height, width)["ellipse"]
    predictor = SamFamilyPredictor(loaded[family])
    predictor.set_image(image)
    spy = Spy(loaded[family].model, monkeypatch)
    got = predictor.predict(CLICKS, prior=prior)

    expected = frame_from_processor(loaded[family], image).prior_logits(prior)
    sent = spy.calls[-1]["input_masks"]
    side = mask_input_side(loaded[family].model.config.prompt_encoder_config)
    assert sent.shape == (1, 1, side, side) and torch.equal(sent, expected)
    assert sent.max() == PRIOR_LOGIT and sent.min() == -PRIOR_LOGIT  # inside and outside
    assert spy.calls[-1]["multimask_output"] is False  # the prior says which object

    mask, score = reference(loaded[family], image, CLICKS, expected)
    assert np.array_equal(got.mask, mask)
    assert got.score == pytest.approx(score) and len(got.candidates) == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_the_mask_input_is_the_decoders_logits_size(loaded, family, monkeypatch):
    predictor = SamFamilyPredictor(loaded[family])
    predictor.set_image(picture(37, 53))
    predictor.predict(CLICKS[:1])
    assert predictor._memory[1][-1].logits.shape[-2:] == predictor._frame.mask_hw


REAL = {  # the real models' processors and prompt encoders, at their default (released) sizes
    "sam": lambda: (
        transformers.SamProcessor(transformers.SamImageProcessor()),
        transformers.SamConfig().prompt_encoder_config,
    ),
    "sam2": lambda: (
        transformers.Sam2Processor(transformers.Sam2ImageProcessor(), target_size=1024),
        transformers.Sam2Config().prompt_encoder_config,
    ),
    "sam3": lambda: (
        transformers.Sam3TrackerProcessor(transformers.Sam3ImageProcessor(), target_size=1008),
        transformers.Sam3TrackerConfig().prompt_encoder_config,
    ),
}
REAL_MASK_SIDE = {"sam": 256, "sam2": 256, "sam3": 288}


@pytest.mark.parametrize("height,width", [(1001, 1500), (1500, 1001), (37, 53), (53, 37)])
@pytest.mark.parametrize("family", FAMILIES)
def test_a_prior_read_back_at_the_real_frames_is_itself(family, height, width):
    processor, prompt_config = REAL[family]()
    pads = family == "sam"
    inputs = processor(images=np.zeros((height, width, 3), np.uint8), return_tensors="pt")
    resized = (
        tuple(int(v) for v in inputs["reshaped_input_sizes"][0])
        if pads
        else (int(processor.target_size),) * 2
    )
    frame = ModelFrame.of(
        processor,
        pads=pads,
        image_hw=(height, width),
        resized_hw=resized,
        mask_side=mask_input_side(prompt_config),
    )
    assert frame.mask_hw == (REAL_MASK_SIDE[family],) * 2
    for name, prior in shapes(height, width).items():
        back = frame.to_image(frame.prior_logits(prior)[0], processor)[0]
        assert iou(back, prior) >= 0.95, (name, iou(back, prior))
    # SAM pads at the bottom and right: a whole-image prior covers the cells of the resized
    # image (a cell at least half inside) and not the padding; SAM 2 / 3 cover everything
    full = frame.prior_logits(np.ones((height, width), dtype=bool))[0, 0] > 0
    cell = frame.padded_hw[0] / frame.mask_hw[0]
    rows = int(np.floor(resized[0] / cell + 0.5)) if pads else frame.mask_hw[0]
    cols = int(np.floor(resized[1] / cell + 0.5)) if pads else frame.mask_hw[1]
    expected = torch.zeros(frame.mask_hw, dtype=torch.bool)
    expected[:rows, :cols] = True
    assert torch.equal(full, expected)


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("family", FAMILIES)
def test_a_prior_read_back_through_the_predictor_is_itself(loaded, family, height, width):
    """At the tiny models' coarse frames (16² or 32² cells for a 53-pixel side)."""
    predictor = SamFamilyPredictor(loaded[family])
    predictor.set_image(picture(height, width))
    frame = predictor._frame
    assert frame == frame_from_processor(loaded[family], picture(height, width))
    for name, prior in shapes(height, width).items():
        back = predictor._to_image(frame.prior_logits(prior)[0])[0]
        assert iou(back, prior) >= 0.95, (name, iou(back, prior))


@pytest.mark.parametrize("family", FAMILIES)
def test_memory_is_keyed_by_the_prior(loaded, family, monkeypatch):
    image = picture(37, 53)
    masks = shapes(37, 53)
    first, other = masks["ellipse"], masks["rectangle"]
    predictor = SamFamilyPredictor(loaded[family])
    predictor.set_image(image)
    frame = predictor._frame
    spy = Spy(loaded[family].model, monkeypatch)

    with_first = predictor.predict(CLICKS, prior=first)
    again = predictor.predict(CLICKS, prior=first.copy())  # the same mask: remembered
    assert len(spy.calls) == 1 and np.array_equal(again.mask, with_first.mask)
    assert prior_key(first) == prior_key(first.copy()) != prior_key(other)

    predictor.predict(CLICKS, prior=other)  # another prior: decoded from its own logits
    assert len(spy.calls) == 2
    assert torch.equal(spy.calls[-1]["input_masks"], frame.prior_logits(other))
    plain = predictor.predict(CLICKS)  # no prior: decoded without a mask prompt
    assert len(spy.calls) == 3 and "input_masks" not in spy.calls[-1]
    assert spy.calls[-1]["multimask_output"] is False  # two clicks: one mask, as before
    fresh = SamFamilyPredictor(loaded[family])
    fresh.set_image(image)
    assert np.array_equal(plain.mask, fresh.predict(CLICKS).mask)

    # a click added to the prior's list extends it: the previous logits, not the prior, go in
    base = predictor.predict(CLICKS, prior=first)
    assert np.array_equal(base.mask, with_first.mask)
    step = predictor._memory[1][-1]
    predictor.predict([*CLICKS, Click(4, 30)], prior=first)
    assert torch.equal(spy.calls[-1]["input_masks"], step.logits[0][None, None])
    assert len(predictor._memory[1]) == 2  # the prior's steps, kept for undo


@pytest.mark.parametrize("family", FAMILIES)
def test_a_prior_alone_is_the_answer_and_a_wrong_one_is_refused(loaded, family, monkeypatch):
    predictor = SamFamilyPredictor(loaded[family])
    predictor.set_image(picture(37, 53))
    spy = Spy(loaded[family].model, monkeypatch)
    prior = shapes(37, 53)["ring"]
    alone = predictor.predict([], prior=prior)
    assert np.array_equal(alone.mask, prior) and alone.mask is not prior and not spy.calls
    with pytest.raises(ValueError, match="prior mask is"):
        predictor.predict(CLICKS, prior=np.zeros((53, 37), dtype=bool))
    with pytest.raises(ValueError, match="prior mask is"):
        predictor.predict_prompts(CLICKS, prior=np.zeros((37, 52), dtype=bool))
    with pytest.raises(ValueError, match="at least one click"):
        predictor.predict([])  # no prior, no prompt: still refused


@pytest.mark.parametrize("family", FAMILIES)
def test_objects_refine_their_own_prior_masks(loaded, family):
    image = picture(37, 53)
    masks = shapes(37, 53)
    prompts = [
        PriorMask(masks["ring"], object_id=2),  # a prior alone: kept as it is
        PriorMask(masks["ellipse"], object_id=1),
        Click(10, 20, object_id=1),
        Click(30, 5, object_id=3),  # no prior: as before
    ]
    predictor = SamFamilyPredictor(loaded[family])
    predictor.set_image(image)
    out = predictor.predict_objects(prompts)
    assert sorted(out) == [1, 2, 3]
    assert np.array_equal(out[2].mask, masks["ring"])

    # a background click is every object's negative: the prior of object 2 is decoded with it;
    # objects 1 and 3 extend their first answers (their logits go back, as one object's would)
    out = predictor.predict_objects([*prompts, Click(50, 2, positive=False, object_id=0)])
    alone = SamFamilyPredictor(loaded[family])
    alone.set_image(image)
    negative = Click(50, 2, positive=False)
    alone.predict([Click(10, 20)], prior=masks["ellipse"])
    one = alone.predict([Click(10, 20), negative], prior=masks["ellipse"])
    alone.predict_prompts([Click(30, 5)], object_id=3)
    two = alone.predict_prompts([negative], object_id=2, prior=masks["ring"])
    three = alone.predict_prompts([Click(30, 5), negative], object_id=3)
    for object_id, expected in ((1, one), (2, two), (3, three)):
        assert np.array_equal(out[object_id].mask, expected.mask), object_id


def test_the_family_is_registered_as_refining_priors():
    for name in FAMILIES:
        assert PRIOR_KIND in method_info(name).prompts, name
    assert SamFamilyPredictor.reads_prior
