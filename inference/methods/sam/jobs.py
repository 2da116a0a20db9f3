"""SAM 3 as a ``text_masks`` batch job: "find every <label>" on every image of a dataset.

The job's entry point (:func:`text_masks`, imported only on a batch worker); its declaration,
``TEXT_MASKS``, is in the package (read without torch when it registers). The entry loads one
:class:`~.text.TextFinder` per job; per image it encodes the image once (``set_image``) and asks
each label's name (``find``), so a project's labels cost one image encoding per image, and each
label's text encoding is computed once per job (the finder's text cache).

The checkpoint is a choice, not a path: a launcher cannot make a worker read an arbitrary
folder. Its id resolves on local disk (:func:`inference.weights.resolve_weights`:
``$MASKWRIGHT_WEIGHTS_DIR/facebook--sam3`` or the Hugging Face cache, which is also how tests
point the job at a tiny checkpoint); a miss fails the job with ``WeightsNotFound``, which names
the id and the folder to put it in.
"""

from __future__ import annotations

from typing import Any

from ...jobs import TextMasks


def text_masks(params: dict[str, Any], device: str) -> TextMasks:
    """The ``text_masks`` entry (see ``inference.jobs``): SAM 3 loaded once for the job.

    Args:
        params: the job's values (``TEXT_MASKS.parse``).
        device: a torch device string.

    Returns:
        :class:`~inference.jobs.TextMasks` whose ``find(rgb, texts, seed)`` gives, for each
        text in order, ``TextFinder.find(text, threshold=score_threshold,
        max_instances=max_per_label)`` as (text, H×W bool mask, score), best first; an
        instance whose mask is empty at the image's size is left out (it outlines nothing).
        ``seed`` is unused: SAM 3 is deterministic.

    Raises:
        WeightsNotFound: the checkpoint is not on local disk (names the id and the folder).
    """
    from .text import TextFinder

    checkpoint = params["checkpoint"]
    finder = TextFinder.from_id(checkpoint, device)
    threshold = float(params["score_threshold"])
    limit = int(params["max_per_label"])

    def find(rgb: Any, texts: list[str], seed: int) -> list[tuple[str, Any, float]]:
        del seed  # same image, same masks: nothing is sampled
        finder.set_image(rgb)
        out: list[tuple[str, Any, float]] = []
        for text in texts:
            for found in finder.find(text, threshold=threshold, max_instances=limit):
                if found.mask.any():
                    out.append((text, found.mask, float(found.score or 0.0)))  # find scores all
        return out

    return TextMasks(find=find, model_name=checkpoint)
