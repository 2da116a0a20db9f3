"""Evaluation loops: RITM's single-object NoC loop and DynaMITe's multi-instance MIST loop.

Single object (:func:`evaluate_sample`): click, predict, record IoU, up to ``max_clicks`` (20).
It does not stop at a target IoU, so mIoU@k is defined for every k ≤ 20; NoC@θ is read off the
curve afterwards (RITM stops at 0.90, which gives the same NoC@85/90).

Multi-instance (:func:`evaluate_multi_sample`, spec A4.2): one initial click per object, then
until every object reaches the IoU threshold (0.85) or the image's budget of τ·N clicks is
spent (the N initial clicks included), a strategy picks an object and one corrective click is
placed for it. The strategies' shared generator is ``random.Random(123456 + seed)``, made once
per run as DynaMITe seeds ``random`` once per run.
"""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..predictor import Predictor
from ..structures import Click, MaskResult
from .clicker import DEFAULT_EXCLUSION_RADIUS, ClickSimulator
from .datasets import Sample
from .metrics import DEFAULT_MAX_CLICKS, MIST_THRESHOLD, iou
from .multi_instance import MultiInstancePredictor
from .strategies import DEFAULT_MAX_STREAK, STRATEGIES, ObjectChooser

DEFAULT_TAU = 10
MIST_SEED_OFFSET = 123456  # DynaMITe: random.seed(123456 + seed_id)


class EmptyObjectError(ValueError):
    """The sample has an object with no clickable (non-ignored) pixel."""


@dataclass
class SampleResult:
    """One object's run. ``ious[k - 1]``: IoU after k clicks (``max_clicks`` values);
    ``seconds``: wall time of each ``predict``; ``clicks``: the clicks placed, in order."""

    name: str
    ious: list[float]
    clicks: list[Click]
    seconds: list[float]
    set_image_seconds: float


@dataclass
class MultiSampleResult:
    """One image's MIST run.

    ``object_ids``: GT ids in order; ``ious[j]``: every object's IoU after prediction j (j = 0
    after the initial clicks); ``clicks``: all clicks in order, each with its owner's
    ``object_id`` (0 = background); ``aimed``: per refinement click,
    the object id it was aimed at (for ``max_dt``, its owner; 0 = background).
    """

    name: str
    object_ids: list[int]
    ious: list[list[float]]
    clicks: list[Click]
    aimed: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    set_image_seconds: float = 0.0

    @property
    def final_ious(self) -> list[float]:
        return self.ious[-1]

    @property
    def num_interactions(self) -> int:
        return len(self.clicks)


def evaluate_sample(
    predictor: Predictor,
    sample: Sample,
    *,
    max_clicks: int = DEFAULT_MAX_CLICKS,
    exclusion_radius: int | None = DEFAULT_EXCLUSION_RADIUS,
    separate_errors: bool = True,
    prior: np.ndarray | None = None,
) -> SampleResult:
    """Run the single-object protocol on ``sample`` (``gt`` H×W bool).

    ``prior`` (H×W bool): the mask the object starts from (an import to fix): the first click
    corrects it and a method that ``reads_prior`` refines it; any other starts from nothing.

    If at some click no error pixel is left to click (perfect up to ignored or excluded
    pixels), the remaining clicks keep the last IoU: the prediction cannot change any more.
    Raises :class:`EmptyObjectError` if the object has no pixel outside the ignored band.
    """
    gt = sample.gt.astype(bool)
    clicker = ClickSimulator(
        gt, sample.ignore, exclusion_radius=exclusion_radius, separate_errors=separate_errors
    )
    start = time.perf_counter()
    predictor.set_image(sample.image)
    set_image_seconds = time.perf_counter() - start
    start_from = prior if predictor.reads_prior else None  # the others start from nothing
    pred = np.zeros(gt.shape, dtype=bool) if start_from is None else start_from.astype(bool)
    ious: list[float] = []
    seconds: list[float] = []
    for _ in range(max_clicks):
        placed = clicker.next_click(1, pred)
        if placed is None:
            if not ious:
                raise EmptyObjectError(f"{sample.name}: no object pixel outside the ignored band")
            ious.extend([ious[-1]] * (max_clicks - len(ious)))
            break
        clicks = list(clicker.clicks)
        start = time.perf_counter()
        pred = predictor.predict(clicks, prior=start_from).mask
        seconds.append(time.perf_counter() - start)
        ious.append(iou(pred, gt, sample.ignore))
    return SampleResult(sample.name, ious, list(clicker.clicks), seconds, set_image_seconds)


def evaluate_dataset(
    predictor: Predictor,
    samples: Iterable[Sample],
    *,
    max_clicks: int = DEFAULT_MAX_CLICKS,
    exclusion_radius: int | None = DEFAULT_EXCLUSION_RADIUS,
    separate_errors: bool = True,
) -> list[SampleResult]:
    """:func:`evaluate_sample` over ``samples`` (wrap them in tqdm for a progress bar).

    Samples with an empty object are skipped with a warning.
    """
    results = []
    for sample in samples:
        try:
            results.append(
                evaluate_sample(
                    predictor,
                    sample,
                    max_clicks=max_clicks,
                    exclusion_radius=exclusion_radius,
                    separate_errors=separate_errors,
                )
            )
        except EmptyObjectError as exc:
            warnings.warn(f"skipped: {exc}", stacklevel=2)
    return results


def evaluate_multi_sample(
    predictor: MultiInstancePredictor,
    sample: Sample,
    *,
    strategy: str = "best",
    tau: int = DEFAULT_TAU,
    beta: int | None = None,
    iou_threshold: float = MIST_THRESHOLD,
    rng: random.Random | None = None,
    exclusion_radius: int | None = DEFAULT_EXCLUSION_RADIUS,
    separate_errors: bool = True,
    max_streak: int = DEFAULT_MAX_STREAK,
) -> MultiSampleResult:
    """Run MIST on one image (``sample.gt``: H×W int instance map, 0 background).

    ``tau``: average clicks per object; the image may use τ·N. ``beta``: ``wlb``'s cap on
    clicks aimed at one object (default τ). ``max_streak``: ``round_robin``'s streak (10).
    ``rng``: the run's generator (default ``random.Random(123456)``, i.e. seed 0).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; one of {', '.join(STRATEGIES)}")
    rng = rng if rng is not None else random.Random(MIST_SEED_OFFSET)
    sim = ClickSimulator(
        sample.gt, sample.ignore, exclusion_radius=exclusion_radius, separate_errors=separate_errors
    )
    object_ids = sim.object_ids
    if not object_ids:
        raise EmptyObjectError(f"{sample.name}: no object in the ground truth")
    gts = {o: sim.labels == o for o in object_ids}
    for o in object_ids:
        if sim.first_click(o) is None:
            raise EmptyObjectError(f"{sample.name}: object {o} is empty outside the ignored band")

    start = time.perf_counter()
    predictor.set_image(sample.image)
    result = MultiSampleResult(sample.name, object_ids, [], [])
    result.set_image_seconds = time.perf_counter() - start

    def predict() -> dict[int, np.ndarray]:
        start = time.perf_counter()
        out = predictor.predict_objects(list(sim.clicks))
        result.seconds.append(time.perf_counter() - start)
        masks = {o: _as_mask(out.get(o), gts[o].shape) for o in object_ids}
        result.ious.append([iou(masks[o], gts[o], sample.ignore) for o in object_ids])
        return masks

    masks = predict()
    chooser = ObjectChooser(
        strategy,
        len(object_ids),
        threshold=iou_threshold,
        rng=rng,
        limit=beta if beta is not None else tau,
        max_streak=max_streak,
    )
    budget = tau * len(object_ids)
    while len(sim.clicks) < budget and not all(v >= iou_threshold for v in result.ious[-1]):
        placed, aimed = None, 0
        if strategy == "max_dt":
            placed = sim.next_click_global(_label_map(masks, object_ids))
            aimed = placed.object_id if placed is not None else 0
        else:
            for index in chooser.candidates(result.ious[-1]):
                placed = sim.next_click(object_ids[index], masks[object_ids[index]])
                if placed is not None:
                    chooser.chose(index)
                    aimed = object_ids[index]
                    break
        if placed is None:
            break  # nothing clickable is left for any candidate: the image ends early
        result.aimed.append(aimed)
        masks = predict()
    result.clicks = list(sim.clicks)
    return result


def evaluate_multi_dataset(
    predictor: MultiInstancePredictor,
    samples: Iterable[Sample],
    *,
    strategy: str = "best",
    tau: int = DEFAULT_TAU,
    beta: int | None = None,
    iou_threshold: float = MIST_THRESHOLD,
    seed: int = 0,
    exclusion_radius: int | None = DEFAULT_EXCLUSION_RADIUS,
    separate_errors: bool = True,
    max_streak: int = DEFAULT_MAX_STREAK,
) -> list[MultiSampleResult]:
    """:func:`evaluate_multi_sample` over ``samples`` with one generator seeded 123456 + seed.

    Images without a clickable object are skipped with a warning.
    """
    rng = mist_rng(seed)
    results = []
    for sample in samples:
        try:
            results.append(
                evaluate_multi_sample(
                    predictor,
                    sample,
                    strategy=strategy,
                    tau=tau,
                    beta=beta,
                    iou_threshold=iou_threshold,
                    rng=rng,
                    exclusion_radius=exclusion_radius,
                    separate_errors=separate_errors,
                    max_streak=max_streak,
                )
            )
        except EmptyObjectError as exc:
            warnings.warn(f"skipped: {exc}", stacklevel=2)
    return results


def mist_rng(seed: int) -> random.Random:
    """The strategies' generator for a run with ``seed`` (DynaMITe's seeding)."""
    return random.Random(MIST_SEED_OFFSET + seed)


def _as_mask(answer: MaskResult | np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if answer is None:
        return np.zeros(shape, dtype=bool)
    mask = np.asarray(answer.mask if isinstance(answer, MaskResult) else answer)
    if mask.shape != shape:
        raise ValueError(f"predict_objects returned a {mask.shape} mask for a {shape} image")
    return mask.astype(bool)


def _label_map(masks: Mapping[int, np.ndarray], object_ids: Sequence[int]) -> np.ndarray:
    """H×W int32 predicted instance map; where masks overlap the higher id wins (DynaMITe)."""
    labels = np.zeros(next(iter(masks.values())).shape, dtype=np.int32)
    for o in object_ids:
        labels[masks[o]] = o
    return labels
