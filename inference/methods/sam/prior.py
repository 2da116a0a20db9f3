"""The image ↔ model-input geometry of a SAM-family model, and a prior mask as its mask prompt.

A SAM-family model sees the image in its own input frame, and its prompt encoder reads a dense
mask prompt (``input_masks``) at the decoder's low-resolution logits size:

* SAM: the image's longest side resized to 1024 (the other rounded), padded at the bottom and
  right to 1024×1024; masks 256×256 (``4 × 1024 / 16``).
* SAM 2.1: the image stretched to 1024×1024, no padding; masks 256×256.
* SAM 3's tracker: the image stretched to 1008×1008, no padding; masks 288×288
  (``4 × 1008 / 14``: not a whole fraction of the input, 3.5 input pixels a cell).

:class:`ModelFrame` holds that geometry for one image. :meth:`ModelFrame.to_image` reads
low-resolution logits back to the image through the processor's ``post_process_masks``
(logits upsampled to the input square, the padding cropped, then resized to the image), and
:meth:`ModelFrame.prior_logits` is its inverse for a prior mask: the mask resized into the
input frame as the image is, padded as the image is, then area-downsampled to the mask size, so
a prior read straight back through ``to_image`` gives itself up to the low resolution.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# The logit a cell wholly inside (+) or outside (−) the prior gets. The prompt encoder was
# trained on the decoder's own low-resolution logits fed back (SAM's iterative training), which
# sit around ±10 away from edges on confident masks; a binary mask at ±10 (sigmoid 0.99995) is
# a certain prior within the range the encoder saw, where ±1 would read as doubt and ±100 lies
# far outside it. Cells the prior's edge crosses get the linear blend, so the 0 logit lies where
# half a cell is inside: exactly where ``post_process_masks``' threshold puts the edge back.
PRIOR_LOGIT = 10.0

PriorKey = tuple[str, str]  # ("prior", digest of the mask's shape and bits)


def mask_input_side(prompt_encoder_config: Any) -> int:
    """The side of the prompt encoder's square mask input (= the decoder's low-resolution
    logits): four times its image embedding side (SAM, SAM 2: 256; SAM 3's tracker: 288)."""
    cfg = prompt_encoder_config
    return 4 * int(cfg.image_size) // int(cfg.patch_size)


def prior_key(prior: np.ndarray) -> PriorKey:
    """A key naming ``prior`` (H×W bool) by content, for the per-object memory: two priors
    share a key only when they are the same mask."""
    bits = np.ascontiguousarray(prior, dtype=bool)
    digest = hashlib.blake2b(np.packbits(bits).tobytes(), digest_size=16)
    digest.update(repr(bits.shape).encode())
    return ("prior", digest.hexdigest())


@dataclass(frozen=True)
class ModelFrame:
    """Where one image lies in a SAM-family model's input (module docstring).

    ``image_hw``: the image's (H, W); ``resized_hw``: its size in the model's input (SAM: the
    longest side at 1024; SAM 2 / 3: the whole square); ``padded_hw``: the input square (SAM:
    the pad size, padding at the bottom and right; SAM 2 / 3: ``resized_hw``); ``mask_hw``: the
    prompt encoder's mask input and the decoder's logits (covering ``padded_hw``); ``pads``:
    the processor is SAM's (its ``post_process_masks`` takes the resized size to crop).
    """

    image_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    padded_hw: tuple[int, int]
    mask_hw: tuple[int, int]
    pads: bool

    @classmethod
    def of(
        cls,
        processor: Any,
        *,
        pads: bool,
        image_hw: tuple[int, int],
        resized_hw: tuple[int, int],
        mask_side: int,
    ) -> ModelFrame:
        """The frame of an image of ``image_hw`` that ``processor`` resized to ``resized_hw``;
        ``pads``: SAM's processor (padded to its ``pad_size``), else stretched (SAM 2 / 3)."""
        if pads:
            pad = processor.image_processor.pad_size
            padded = (int(pad["height"]), int(pad["width"]))
        else:
            padded = resized_hw
        return cls(image_hw, resized_hw, padded, (mask_side, mask_side), pads)

    def prior_logits(self, prior: np.ndarray, magnitude: float = PRIOR_LOGIT) -> torch.Tensor:
        """``prior`` (H×W bool at the image size) as a dense mask prompt: (1, 1, h, w) float32
        logits at ``mask_hw``, ``+magnitude`` inside, ``−magnitude`` outside and in the padding,
        the linear blend on cells the edge crosses (by the fraction of the cell inside)."""
        if prior.shape != self.image_hw:
            raise ValueError(f"prior mask is {prior.shape}, the image {self.image_hw}")
        inside = torch.from_numpy(np.ascontiguousarray(prior, dtype=np.float32))[None, None]
        # as the processor resizes the image (bilinear, pixel centres: align_corners=False);
        # antialias makes a downsizing average every pixel instead of sampling a few
        inside = F.interpolate(
            inside, size=self.resized_hw, mode="bilinear", align_corners=False, antialias=True
        )
        pad_h = self.padded_hw[0] - self.resized_hw[0]
        pad_w = self.padded_hw[1] - self.resized_hw[1]
        inside = F.pad(inside, (0, pad_w, 0, pad_h))  # SAM's padding is no object: 0 inside
        # the fraction of each mask cell inside; antialiased bilinear is area-like at 4× and
        # at SAM 3's 3.5×, where adaptive pooling ("area") would give cells unequal windows
        inside = F.interpolate(
            inside, size=self.mask_hw, mode="bilinear", align_corners=False, antialias=True
        ).clamp_(0.0, 1.0)
        return magnitude * (2.0 * inside - 1.0)

    def to_image(self, logits: torch.Tensor, processor: Any) -> np.ndarray:
        """(K, h, w) low-resolution logits → (K, H, W) bool masks at the image size, through
        the processor's ``post_process_masks`` (mask = logit > 0)."""
        batch = [logits[None]]  # one image, one prompt set: (1, K, h, w)
        sizes = [list(self.image_hw)]
        if self.pads:
            masks = processor.post_process_masks(batch, sizes, [list(self.resized_hw)])
        else:
            masks = processor.post_process_masks(batch, sizes)
        return masks[0][0].cpu().numpy().astype(bool, copy=False)
