"""SAM 3 text prompts: "find every <label>" → one mask per instance found, with scores.

:class:`TextFinder` wraps a transformers ``Sam3Model`` and its ``Sam3Processor``. Like SAM's
predictor it has two phases: ``set_image`` runs the vision encoder (ViT + FPN neck) once and
keeps its output; ``find`` runs only the text encoder, the DETR encoder/decoder and the mask
decoder on those kept embeddings, so asking for every label of a project on one image costs one
image encoding. Text encodings are kept too (a small cache that survives ``set_image``), since a
batch job asks the same labels on every image.

``find`` reads the outputs as transformers' ``Sam3Processor.post_process_instance_segmentation``
does (score = sigmoid(query logit) × sigmoid(presence logit); keep score > threshold; mask =
bilinear resize of sigmoid(mask logits) to the image size, > mask_threshold), but orders the
kept instances by score and resizes only the ``max_instances`` best: resizing all 200 queries'
maps to a large photo would take gigabytes.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
import torch.nn.functional as F

from ...predictor import PredictorNotReady
from ...structures import MaskResult
from ...weights import resolve_weights

if TYPE_CHECKING:
    from transformers import Sam3Model, Sam3Processor

MAX_TEXT_CHARS = 200  # a label or a short phrase; longer text is refused, not cut
TEXT_CACHE_SIZE = 256  # distinct texts whose encodings are kept (a project's label set)


def check_text(text: str) -> str:
    """``text`` without surrounding whitespace; ValueError when empty or over 200 characters."""
    prompt = text.strip()
    if not prompt:
        raise ValueError("a text prompt needs at least one non-space character")
    if len(prompt) > MAX_TEXT_CHARS:
        raise ValueError(f"a text prompt is at most {MAX_TEXT_CHARS} characters, got {len(prompt)}")
    return prompt


class TextFinder:
    """Every instance of a described thing in one image, through SAM 3.

    Args:
        model: a loaded ``transformers.Sam3Model`` (moved to ``device`` and set to eval here).
        processor: its ``transformers.Sam3Processor`` (image resizing/normalisation, CLIP
            tokenizer).
        device: a torch device string, e.g. ``"cpu"`` or ``"cuda"``.
    """

    def __init__(self, model: Sam3Model, processor: Sam3Processor, device: str = "cpu") -> None:
        self.device = torch.device(device)
        # Any: transformers' decorated ``to``/``eval`` and config unions defeat mypy
        self.model: Any = cast(Any, model)
        self.model.to(self.device).eval()
        self.processor: Any = cast(Any, processor)
        # the CLIP text encoder's position table bounds the token count (32 for SAM 3)
        self.max_tokens = int(self.model.config.text_config.max_position_embeddings)
        self._vision: Any = None  # Sam3VisionEncoderOutput of the current image
        self._size: tuple[int, int] | None = None  # (H, W) of the current image
        self._texts: OrderedDict[str, tuple[Any, torch.Tensor]] = OrderedDict()

    @classmethod
    def from_folder(cls, folder: Path | str, device: str = "cpu") -> TextFinder:
        """Load model and processor from a local checkpoint folder (never downloads)."""
        from transformers import Sam3Model, Sam3Processor

        model = Sam3Model.from_pretrained(str(folder), local_files_only=True)
        processor = Sam3Processor.from_pretrained(str(folder), local_files_only=True)
        return cls(model, processor, device)

    @classmethod
    def from_id(
        cls, model_id: str = "facebook/sam3", device: str = "cpu", root: Path | str | None = None
    ) -> TextFinder:
        """Load ``model_id`` from local disk (:func:`inference.weights.resolve_weights`; ``root``
        defaults to ``$MASKWRIGHT_WEIGHTS_DIR``). Raises ``WeightsNotFound`` naming the id."""
        return cls.from_folder(resolve_weights(model_id, root=root), device)

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the current image; PredictorNotReady before :meth:`set_image`."""
        if self._size is None:
            raise PredictorNotReady("call set_image before find")
        return self._size

    def set_image(self, image: np.ndarray) -> None:
        """Encode ``image`` (H×W×3 uint8 RGB) once for every later :meth:`find`."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an H×W×3 uint8 RGB image, got {image.dtype} {image.shape}")
        inputs = self.processor(
            images=image, return_tensors="pt", input_data_format="channels_last"
        )
        with torch.inference_mode():
            self._vision = self.model.get_vision_features(
                pixel_values=inputs["pixel_values"].to(self.device)
            )
        self._size = (int(image.shape[0]), int(image.shape[1]))

    def find(
        self,
        text: str,
        *,
        threshold: float = 0.5,
        mask_threshold: float = 0.5,
        max_instances: int = 100,
    ) -> list[MaskResult]:
        """Every instance of ``text`` in the current image.

        Args:
            text: what to find, e.g. ``"person"`` (1–200 characters; the tokenizer keeps the
                first 32 tokens).
            threshold: keep instances whose score is above this (score in [0, 1]).
            mask_threshold: a pixel belongs to an instance where its mask probability is above.
            max_instances: at most this many instances, the best scores.

        Returns:
            One :class:`MaskResult` per instance, best score first: ``mask`` H×W bool at the
            image's size, ``score`` float in [0, 1], ``timings`` ``{"predict": seconds}``.
        """
        prompt = check_text(text)
        if max_instances < 0:
            raise ValueError(f"max_instances must be ≥ 0, got {max_instances}")
        height, width = self.image_size
        start = time.perf_counter()
        text_embeds, attention_mask = self._encode_text(prompt)
        with torch.inference_mode():
            out = self.model(
                vision_embeds=self._vision, text_embeds=text_embeds, attention_mask=attention_mask
            )
            scores = out.pred_logits[0].sigmoid()  # (Q,)
            if out.presence_logits is not None:  # "is there any such thing here at all?"
                scores = scores * out.presence_logits[0].sigmoid()
            kept = torch.nonzero(scores > threshold).flatten()
            # stable, so equal scores keep query order (as transformers' own output has them)
            kept = kept[torch.sort(scores[kept], descending=True, stable=True).indices]
            kept = kept[:max_instances]
            if len(kept) == 0:
                return []
            # (K, h, w) at the decoder's size; float32 so a half-precision model resizes alike
            probs = out.pred_masks[0, kept].float().sigmoid()
            masks = F.interpolate(
                probs[None], size=(height, width), mode="bilinear", align_corners=False
            )[0]
            masks_np = (masks > mask_threshold).cpu().numpy()
            scores_np = scores[kept].float().cpu().numpy()
        timings = {"predict": time.perf_counter() - start}
        return [
            MaskResult(mask=mask, score=float(score), timings=dict(timings))
            for mask, score in zip(masks_np, scores_np, strict=True)
        ]

    def _encode_text(self, prompt: str) -> tuple[Any, torch.Tensor]:
        """(text encoder output with ``pooler_output`` 1×T×D, attention mask 1×T int64) of
        ``prompt``, T = 32 tokens padded; cached per text, least recently used dropped."""
        if prompt in self._texts:
            self._texts.move_to_end(prompt)
            return self._texts[prompt]
        # as Sam3Processor tokenizes text (padded to 32), but cut at 32 tokens: the processor
        # does not truncate, and a longer sequence overruns the text encoder's position table
        tokens = self.processor.tokenizer(
            prompt,
            padding="max_length",
            max_length=self.max_tokens,
            truncation=True,
            return_tensors="pt",
        ).to(self.device)
        with torch.inference_mode():
            embeds = self.model.get_text_features(
                input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
            )
        self._texts[prompt] = (embeds, tokens["attention_mask"])
        if len(self._texts) > TEXT_CACHE_SIZE:
            self._texts.popitem(last=False)
        return self._texts[prompt]


def build_text_finder(backbone: str | None = None, device: str = "cpu") -> TextFinder:
    """SAM 3's ``text_finder`` entry (``MethodInfo.text_finder``): the finder of ``backbone``,
    a variant of the ``sam3`` family (``"sam3"`` → ``facebook/sam3``, the default), a model id
    or a checkpoint folder, loaded from local disk only. Raises ``WeightsNotFound`` naming the
    model id and the folder to put it in."""
    from .variants import family, model_id_of

    return TextFinder.from_id(model_id_of("sam3", backbone or family("sam3").default), device)
