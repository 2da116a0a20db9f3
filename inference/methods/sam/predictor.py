"""SAM, SAM 2.1 and SAM 3 (its tracker) as interactive predictors, through transformers.

:class:`SamFamilyPredictor` serves the three families (:mod:`.variants`): ``set_image`` runs
the image encoder once and keeps its embeddings (one (1, C, h, w) tensor for SAM, three feature
levels for SAM 2 / SAM 3); each prediction runs only the prompt encoder and mask decoder on them.

Prompts are clicks and at most one box per object (the newest box wins), in image pixels
(x right, y down). They are scaled to the model's input frame as the family's processor does
(SAM: the longest side resized to 1024, the rest padded; SAM 2 / 3: the image stretched to a
square), and the decoder's low-resolution logits go back to the image size through the
processor's ``post_process_masks``, so masks equal transformers' own pipeline.

As SAM's official predictor is used interactively, one click alone asks for three candidate
masks (``multimask_output``; ambiguous prompt), anything more for one; the candidates come back
ranked by predicted IoU (``MaskResult.candidates``, best first; ``score`` the best one's IoU).
The best candidate's low-resolution logits are remembered per object and passed back as
``input_masks`` only when the next prompt list extends the remembered one (the same prompts,
then new ones at the end); the same prompts again give the remembered answer without a model
call, so one object's mask does not change while another object is being clicked, and an
undo gives back the earlier mask. ``get_state``/``set_state`` snapshot that memory.

A prior mask (an imported mask or pseudo label to refine; ``predict(clicks, prior=...)`` or a
``PriorMask`` prompt) enters as the dense mask prompt of the object's first decode, mapped into
the model's frame as the image is (:mod:`.prior`); later decodes that extend the prompts feed
back the previous logits as before. The prior is part of the remembered prompt list (a key of
its content), so an answer is never reused for another prior or none. A prior with no click
or box is the answer itself (nothing to decode); with a prior, one click asks for one mask (the
prior settles what the click means).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...predictor import Predictor, PredictorNotReady
from ...structures import Box, Click, MaskResult, PriorMask, Prompt, Text, prompt_clicks
from .prior import ModelFrame, mask_input_side, prior_key
from .variants import LoadedSam, load_variant

MAX_STEPS = 32  # remembered predictions per object (each ≤ 3 × 256² float logits)

# The precision each processor scales coordinates in (SamProcessor: float64 numpy;
# Sam2/Sam3TrackerProcessor: float32 torch); matching it keeps masks bit-identical to theirs.
_COORD_DTYPE = {"sam": torch.float64}

# ("click", x, y, positive), ("box", x0, y0, x1, y1), or ("prior", digest) first of all
PromptKey = tuple[Any, ...]


@dataclass(frozen=True)
class Step:
    """One remembered prediction of an object.

    ``prompts``: the effective prompt list it answered (keys, in order; a prior's key first
    where there was one); ``logits``: (K, h, w) float low-resolution logits of the K returned
    masks (K = 3 or 1), on the model's device; ``scores``: (K,) their predicted IoUs.
    """

    prompts: tuple[PromptKey, ...]
    logits: torch.Tensor
    scores: torch.Tensor


def _box_corners(box: Box) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) with x0 ≤ x1 and y0 ≤ y1, whichever corner the drag started from."""
    return (min(box.x0, box.x1), min(box.y0, box.y1), max(box.x0, box.x1), max(box.y0, box.y1))


def effective_prompts(prompts: Sequence[Click | Box]) -> tuple[PromptKey, ...]:
    """The prompt list SAM reads, as keys in order: every click, and only the newest box (a new
    box replaces the earlier one, so a list with a replaced box does not extend the old list)."""
    boxes = [i for i, p in enumerate(prompts) if isinstance(p, Box)]
    keys: list[PromptKey] = []
    for i, p in enumerate(prompts):
        if isinstance(p, Click):
            keys.append(("click", float(p.x), float(p.y), bool(p.positive)))
        elif i == boxes[-1]:
            keys.append(("box", *_box_corners(p)))
    return tuple(keys)


class SamFamilyPredictor(Predictor):
    """Clicks and a box → ranked candidate masks, with a SAM-family model (module docstring).

    Args:
        loaded: the model and processor (:func:`~.variants.load_variant`), shared by every
            predictor of the variant; kept as ``backbone`` so the worker's cache counts the
            image's embeddings, not the model.
        max_steps: predictions remembered per object (for extension and undo).
    """

    reads_prior = True  # a prior mask is the first decode's mask prompt (module docstring)

    def __init__(self, loaded: LoadedSam, *, max_steps: int = MAX_STEPS) -> None:
        super().__init__()
        self.backbone = loaded
        self.max_steps = max_steps
        self.device = torch.device(loaded.device)
        self._embeddings: torch.Tensor | list[torch.Tensor] | None = None
        self._input_hw: tuple[int, int] | None = None  # the image's size in the model's frame
        self._frame: ModelFrame | None = None  # the image ↔ model-input geometry
        self._memory: dict[int, tuple[Step, ...]] = {}

    @property
    def family(self) -> str:
        return self.backbone.family.name

    # -- image ---------------------------------------------------------------------------

    def _set_image(self, image: np.ndarray) -> None:
        processor, model = self.backbone.processor, self.backbone.model
        inputs = processor(images=image, return_tensors="pt", input_data_format="channels_last")
        with torch.inference_mode():
            self._embeddings = model.get_image_embeddings(inputs["pixel_values"].to(self.device))
        if self.backbone.family.needs_reshaped_size:
            in_h, in_w = (int(v) for v in inputs["reshaped_input_sizes"][0])
        else:
            in_h = in_w = int(processor.target_size)
        self._input_hw = (in_h, in_w)
        self._frame = ModelFrame.of(
            processor,
            pads=self.backbone.family.needs_reshaped_size,
            image_hw=(image.shape[0], image.shape[1]),
            resized_hw=(in_h, in_w),
            mask_side=mask_input_side(model.config.prompt_encoder_config),
        )
        self._memory = {}

    def reset(self) -> None:
        super().reset()
        self._embeddings = None
        self._input_hw = None
        self._frame = None
        self._memory = {}

    # -- prompts -------------------------------------------------------------------------

    def _predict(self, clicks: list[Click]) -> MaskResult:
        return self.predict_prompts(clicks)

    def _predict_prior(self, clicks: list[Click], prior: np.ndarray) -> MaskResult:
        return self.predict_prompts(clicks, prior=prior)

    def predict_objects(self, prompts: Sequence[Prompt]) -> dict[int, MaskResult]:
        """One mask per object id > 0 from its clicks and newest box, with every object-0 click
        as a negative, in the given order. Scribbles and extreme points are read as clicks
        (:func:`~inference.structures.prompt_clicks`); text is ignored. An object's
        ``PriorMask`` (its last) is refined (``predict_prompts(prior=...)``; alone, it is the
        answer); an object with no prior and neither a positive click nor a box gets an empty
        mask. Objects are independent, so masks may overlap."""
        ids = sorted({p.object_id for p in prompts if p.object_id > 0})
        priors = {p.object_id: p.mask for p in prompts if isinstance(p, PriorMask)}
        out: dict[int, MaskResult] = {}
        for object_id in ids:
            own: list[Click | Box] = []
            for p in prompts:
                if isinstance(p, (Text, PriorMask)) or p.object_id not in (0, object_id):
                    continue
                if isinstance(p, Box):
                    if p.object_id == object_id:  # a box says where an object is, not where not
                        own.append(p)
                    continue
                for c in prompt_clicks(p):
                    own.append(c if c.object_id else Click(c.x, c.y, positive=False, object_id=0))
            prior = priors.get(object_id)
            if prior is not None or any(isinstance(p, Box) or p.positive for p in own):
                out[object_id] = self.predict_prompts(own, object_id=object_id, prior=prior)
            else:
                out[object_id] = MaskResult(mask=np.zeros(self.image_size, dtype=bool))
        return out

    def predict_prompts(
        self,
        prompts: Sequence[Click | Box],
        *,
        object_id: int = 1,
        prior: np.ndarray | None = None,
    ) -> MaskResult:
        """Ranked candidate masks (H×W bool at image size) for one object's ``prompts`` (clicks
        and boxes, in order; only the newest box is read). ``object_id`` names the object whose
        previous prediction is remembered; ``prior`` (H×W bool at image size): the mask to
        refine, returned as it is when there are no prompts (see the module docstring)."""
        if self._embeddings is None:
            raise PredictorNotReady("call set_image(rgb) before predict()")
        height, width = self.image_size
        for p in prompts:
            if isinstance(p, Click):
                p.check_inside(height, width)
            elif not isinstance(p, Box):
                raise TypeError(f"SAM reads clicks and boxes, not {p.kind!r} prompts")
            else:
                x0, y0, x1, y1 = _box_corners(p)
                if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
                    raise ValueError(f"box {p.xyxy} is outside the {width}×{height} image")
        keys = effective_prompts(prompts)
        if prior is not None:
            prior = np.asarray(prior)
            if prior.shape != (height, width):
                raise ValueError(f"prior mask is {prior.shape}, the image {(height, width)}")
            prior = prior.astype(bool, copy=False)
            if not keys:  # nothing to decode: the prior stands
                return MaskResult(mask=prior.copy(), timings={"predict": 0.0})
            keys = (prior_key(prior), *keys)
        if not keys:
            raise ValueError("SAM needs at least one click or a box")
        started = time.perf_counter()
        steps = self._memory.get(object_id, ())
        same = next((s for s in steps if s.prompts == keys), None)
        if same is not None:  # asked again (another object moved, or an undo): the same answer
            step = same
        else:
            base = max(
                (i for i, s in enumerate(steps) if keys[: len(s.prompts)] == s.prompts),
                key=lambda i: len(steps[i].prompts),
                default=None,
            )
            previous = None if base is None else steps[base]
            step = self._decode(keys, previous, prior)
            kept = steps[: base + 1] if base is not None else ()
            self._memory[object_id] = (*kept, step)[-self.max_steps :]
        masks = self._to_image(step.logits)
        scores = step.scores.float().cpu().numpy()
        order = np.argsort(-scores, kind="stable")
        candidates = [MaskResult(mask=masks[k], score=float(scores[k])) for k in order]
        best = candidates[0]
        return MaskResult(
            mask=best.mask,
            score=best.score,
            timings={"predict": time.perf_counter() - started},
            candidates=candidates,
        )

    def _decode(
        self, keys: tuple[PromptKey, ...], previous: Step | None, prior: np.ndarray | None
    ) -> Step:
        """Run the prompt encoder and mask decoder on the kept embeddings for ``keys``; the
        dense mask prompt is the previous step's best logits, or on a first decode the prior
        mask's logits (:meth:`.prior.ModelFrame.prior_logits`), or none."""
        clicks = [k for k in keys if k[0] == "click"]
        boxes = [k for k in keys if k[0] == "box"]
        kwargs: dict[str, Any] = {}
        if clicks:
            xy = [[k[1], k[2]] for k in clicks]
            kwargs["input_points"] = self._to_model_frame(xy).reshape(1, 1, len(clicks), 2)
            labels = [int(k[3]) for k in clicks]
            kwargs["input_labels"] = torch.tensor([[labels]], dtype=torch.int64, device=self.device)
        if boxes:
            corners = [[boxes[0][1], boxes[0][2]], [boxes[0][3], boxes[0][4]]]
            kwargs["input_boxes"] = self._to_model_frame(corners).reshape(1, 1, 4)
        if previous is not None:
            best = int(torch.argmax(previous.scores))
            kwargs["input_masks"] = previous.logits[best][None, None]  # (1, 1, h, w)
        elif prior is not None:
            assert self._frame is not None
            kwargs["input_masks"] = self._frame.prior_logits(prior).to(self.device)
        # one click is ambiguous (part, object, whole): ask for three masks, as SAM does; a
        # prior's key before it makes the list longer: the prior says which object is meant
        multimask = len(keys) == 1 and keys[0][0] == "click"
        with torch.inference_mode():
            out = self.backbone.model(
                image_embeddings=self._embeddings, multimask_output=multimask, **kwargs
            )
        return Step(prompts=keys, logits=out.pred_masks[0, 0], scores=out.iou_scores[0, 0])

    def _to_model_frame(self, xy: list[list[float]]) -> torch.Tensor:
        """Pixel (x, y) pairs, (N, 2), scaled to the model's input frame as the processor does
        (x by input width / image width, y by input height / image height)."""
        assert self._input_hw is not None
        height, width = self.image_size
        in_h, in_w = self._input_hw
        coords = torch.tensor(xy, dtype=_COORD_DTYPE.get(self.family, torch.float32))
        coords[:, 0] = coords[:, 0] * (in_w / width)
        coords[:, 1] = coords[:, 1] * (in_h / height)
        return coords.to(self.device)

    def _to_image(self, logits: torch.Tensor) -> np.ndarray:
        """(K, h, w) low-resolution logits → (K, H, W) bool masks at the image size, through
        the processor's ``post_process_masks`` (mask = logit > 0), as
        :meth:`.prior.ModelFrame.to_image` does it."""
        assert self._frame is not None
        return self._frame.to_image(logits, self.backbone.processor)

    # -- undo ----------------------------------------------------------------------------

    def get_state(self) -> dict[int, tuple[Step, ...]]:
        """The remembered predictions per object (steps are immutable; this copies the map)."""
        return dict(self._memory)

    def set_state(self, state: Any) -> None:
        """Restore what :meth:`get_state` returned (None: forget every object's memory)."""
        self._memory = dict(state or {})


def _build(family: str, device: str, backbone: str | LoadedSam | None, **kwargs: Any):
    if backbone is None:
        from .variants import family as family_of

        backbone = family_of(family).default
    if isinstance(backbone, str):
        backbone = load_variant(family, backbone, device)
    elif backbone.family.name != family:
        raise ValueError(f"a {backbone.family.name} model cannot serve {family}")
    return SamFamilyPredictor(backbone, **kwargs)


def build_sam(
    device: str = "cpu", backbone: str | LoadedSam | None = None, **kwargs: Any
) -> SamFamilyPredictor:
    """SAM (``vit-b`` default, ``vit-l``, ``vit-h``; or a model id, a checkpoint folder,
    ``"tiny"``, or a loaded model to share). ``kwargs``: :class:`SamFamilyPredictor`'s."""
    return _build("sam", device, backbone, **kwargs)


def build_sam2(
    device: str = "cpu", backbone: str | LoadedSam | None = None, **kwargs: Any
) -> SamFamilyPredictor:
    """SAM 2.1 (``hiera-tiny`` default, ``hiera-small``, ``hiera-base-plus``, ``hiera-large``;
    or a model id, a checkpoint folder, ``"tiny"``, or a loaded model to share)."""
    return _build("sam2", device, backbone, **kwargs)


def build_sam3(
    device: str = "cpu", backbone: str | LoadedSam | None = None, **kwargs: Any
) -> SamFamilyPredictor:
    """SAM 3's tracker for clicks and boxes (``sam3`` = ``facebook/sam3``; or a model id, a
    checkpoint folder, ``"tiny"``, or a loaded model to share)."""
    return _build("sam3", device, backbone, **kwargs)
