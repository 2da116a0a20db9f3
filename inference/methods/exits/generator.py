"""The pseudo-label generator (supplement Sec. A; MAL's heads, spec B2.2) and its encoders.

``logits = <F_pixel, F_proto>``, ``M = sigmoid(logits)``:

* an encoder turns a (B, 3, S, S) normalised crop into a (B, D, S/8, S/8) feature map F;
* the pixel-wise head (4 conv 3×3 + ReLU, ×2 bilinear upsampling between the 2nd and 3rd)
  gives F_pixel, (B, D/3, S/4, S/4);
* the prototype head (spatial mean of F → Linear D→D/3 → ReLU → Linear D/3→D/3) gives F_proto;
* their inner product per location is the mask logit, (B, 1, S/4, S/4).

Encoders (``encoder=`` name):

* ``"effnet-lite0"`` (default, offline): timm ``tf_efficientnet_lite0`` with the packaged
  ImageNet weights, stage 2 (stride 8, 40 ch) concatenated with stage 4 (stride 16, 112 ch,
  upsampled), projected to D = 192 by a 1×1 conv. Its similarity matrix is the cosine-softmax
  affinity of F (the backbones' ``cosine_affinity``).
* ``"mae-vitb16"``: transformers ``ViTMAEModel`` (MAE init, as the paper; needs local weights
  ``facebook/vit-mae-base``), patch 16, D = 768; S/16 tokens, upsampled ×2 to the S/8 grid. Its
  similarity matrix is the head-mean attention of layer 10 (1-based, supplement Table a1), CLS
  dropped, rows renormalised.
* ``"tiny-vit"`` / ``"tiny-conv"``: random-weight stand-ins for tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...backbones._util import IMAGENET_MEAN, IMAGENET_STD
from ...backbones.feature_affinity import cosine_affinity

# Similarity layer of ViT extractors, 1-based (supplement Table a1).
SIMILARITY_LAYER = 10
# Inverse temperature of the CNN cosine-softmax similarity (as effnet-lite0's affinity default).
COSINE_SCALE = 10.0


class EffNetEncoder(nn.Module):
    """EfficientNet-Lite0 stages 0…4 → (B, dim, S/8, S/8); mean = std = 0.5 normalisation."""

    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    stride = 8

    def __init__(self, *, pretrained: bool = True, dim: int = 192) -> None:
        super().__init__()
        import timm
        from timm.models.efficientnet import EfficientNet

        from ...backbones.effnet import load_imagenet_weights

        model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        assert isinstance(model, EfficientNet)
        if pretrained:
            load_imagenet_weights(model)
        self.stem = nn.Sequential(model.conv_stem, model.bn1)
        self.blocks = nn.ModuleList(model.blocks[:5])
        self.project = nn.Conv2d(40 + 112, dim, 1)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        fine = None
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index == 2:
                fine = x
        assert fine is not None
        coarse = F.interpolate(x, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        return self.project(torch.cat([fine, coarse], dim=1))

    def similarity(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, N) row-stochastic cosine-softmax affinity of the features, N = (S/8)²."""
        features = self.forward(x)
        return torch.stack([cosine_affinity(f, scale=COSINE_SCALE) for f in features])


class TinyConvEncoder(nn.Module):
    """Three stride-2 convs (random weights): a fast stand-in for tests."""

    mean, std = IMAGENET_MEAN, IMAGENET_STD
    stride = 8

    def __init__(self, *, pretrained: bool = False, dim: int = 24) -> None:
        super().__init__()
        del pretrained
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(16, 24, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(24, dim, 3, 2, 1),
        )
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def similarity(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([cosine_affinity(f, scale=COSINE_SCALE) for f in self.forward(x)])


class VitEncoder(nn.Module):
    """A transformers ViT-MAE encoder (masking off) → patch tokens on the S/8 grid."""

    mean, std = IMAGENET_MEAN, IMAGENET_STD
    stride = 8

    def __init__(
        self,
        *,
        model_id: str | None = "facebook/vit-mae-base",
        pretrained: bool = True,
        tiny: bool = False,
    ) -> None:
        super().__init__()
        import transformers

        if tiny:
            config = transformers.ViTMAEConfig(
                hidden_size=48,
                num_hidden_layers=SIMILARITY_LAYER,
                num_attention_heads=4,
                intermediate_size=96,
                patch_size=16,
                image_size=64,
                mask_ratio=0.0,
            )
            self.model = transformers.ViTMAEModel(config)
        else:
            from ...weights import resolve_weights

            path = resolve_weights(model_id or "facebook/vit-mae-base")
            # Without MAE weights at hand the caller gets WeightsNotFound; ``pretrained=False``
            # builds the architecture from the checkpoint's config only.
            if pretrained:
                self.model = transformers.ViTMAEModel.from_pretrained(
                    path, mask_ratio=0.0, attn_implementation="eager", local_files_only=True
                )
            else:
                config = transformers.ViTMAEConfig.from_pretrained(path, local_files_only=True)
                config.mask_ratio = 0.0
                self.model = transformers.ViTMAEModel(config)
        self.model.set_attn_implementation("eager")
        patch = self.model.config.patch_size
        self.patch = int(patch if isinstance(patch, int) else patch[0])
        self.dim = int(self.model.config.hidden_size)

    def _layers(self) -> nn.ModuleList:
        for path in ("layers", "encoder.layer"):
            try:
                return self.model.get_submodule(path)  # type: ignore[return-value]
            except AttributeError:
                continue
        raise TypeError("cannot find the transformer layers")

    def _run(self, x: torch.Tensor, attention_layer: int | None = None) -> tuple[torch.Tensor, Any]:
        side = x.shape[-1] // self.patch
        # MAE shuffles tokens by argsort(noise) even at mask_ratio 0: increasing noise keeps order.
        noise = torch.arange(side * side, dtype=torch.float32, device=x.device)[None].expand(
            x.shape[0], -1
        )
        got: dict[str, torch.Tensor] = {}
        handle = None
        if attention_layer is not None:

            def keep(module: nn.Module, args: Any, output: Any) -> None:
                got["attention"] = output[1].float().mean(dim=1)  # (B, T, T), heads averaged

            block = self._layers()[attention_layer - 1]
            handle = block.get_submodule("attention").register_forward_hook(keep)
        try:
            out = self.model(pixel_values=x, noise=noise, interpolate_pos_encoding=True)
        finally:
            if handle is not None:
                handle.remove()
        tokens = out.last_hidden_state[:, 1:]
        grid = tokens.transpose(1, 2).reshape(x.shape[0], self.dim, side, side)
        return grid, got.get("attention")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid, _ = self._run(x)
        return F.interpolate(
            grid, scale_factor=self.patch / self.stride, mode="bilinear", align_corners=False
        )

    def similarity(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, N) layer-10 attention over patches (N = (S/16)²), CLS dropped, rows
        renormalised."""
        layer = min(SIMILARITY_LAYER, len(self._layers()))
        _, attention = self._run(x, attention_layer=layer)
        patches = attention[:, 1:, 1:]
        return patches / patches.sum(dim=-1, keepdim=True)


def build_encoder(name: str, *, pretrained: bool = True) -> nn.Module:
    """Encoder by name (module docstring)."""
    if name == "effnet-lite0":
        return EffNetEncoder(pretrained=pretrained)
    if name == "mae-vitb16":
        return VitEncoder(pretrained=pretrained)
    if name == "tiny-vit":
        return VitEncoder(tiny=True)
    if name == "tiny-conv":
        return TinyConvEncoder()
    raise KeyError(
        f"unknown EXITS encoder {name!r}; known: effnet-lite0, mae-vitb16, tiny-vit, tiny-conv"
    )


class PseudoLabelGenerator(nn.Module):
    """Encoder + pixel-wise head + prototype head (module docstring)."""

    mean: torch.Tensor  # (1, 3, 1, 1) buffers: the encoder's input normalisation
    std: torch.Tensor

    def __init__(self, encoder: nn.Module, *, encoder_name: str = "custom") -> None:
        super().__init__()
        self.encoder = encoder
        self.encoder_name = encoder_name
        dim = int(encoder.dim)  # type: ignore[arg-type]
        mask_dim = max(8, dim // 3)
        self.pixel_head = nn.ModuleList(
            [
                nn.Conv2d(dim, dim, 3, padding=1),
                nn.Conv2d(dim, dim, 3, padding=1),
                nn.Conv2d(dim, mask_dim, 3, padding=1),
                nn.Conv2d(mask_dim, mask_dim, 3, padding=1),
            ]
        )
        self.proto_head = nn.Sequential(
            nn.Linear(dim, mask_dim), nn.ReLU(), nn.Linear(mask_dim, mask_dim)
        )
        self.register_buffer("mean", torch.tensor(encoder.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(encoder.std).view(1, 3, 1, 1), persistent=False)

    def normalise(self, crops: torch.Tensor) -> torch.Tensor:
        """(B, S, S, 3) uint8 crops → (B, 3, S, S) float normalised as the encoder expects."""
        x = crops.permute(0, 3, 1, 2).float() / 255.0
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised crops → (B, 1, S/4, S/4) mask logits."""
        features = self.encoder(x)
        pixel = features
        for index, conv in enumerate(self.pixel_head):
            if index == 2:
                pixel = F.interpolate(pixel, scale_factor=2, mode="bilinear", align_corners=False)
            pixel = F.relu(conv(pixel))
        proto = self.proto_head(features.mean(dim=(2, 3)))  # (B, D/3)
        return torch.einsum("bchw,bc->bhw", pixel, proto).unsqueeze(1)

    @torch.no_grad()
    def similarity(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, N) similarity of the encoder (see :func:`build_encoder`)."""
        return self.encoder.similarity(x)  # type: ignore[operator]


def build_generator(
    encoder: str = "effnet-lite0", *, pretrained: bool = True, seed: int | None = 0
) -> PseudoLabelGenerator:
    """A generator with a named encoder; heads (and the effnet projection) seeded by ``seed``."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        return PseudoLabelGenerator(
            build_encoder(encoder, pretrained=pretrained), encoder_name=encoder
        )


def save_generator(model: PseudoLabelGenerator, path: str | Path, **extra: Any) -> None:
    """Weights as safetensors with the config (encoder name, crop size, …) in its metadata."""
    from safetensors.torch import save_file

    config = {"encoder": model.encoder_name, **extra}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={"exits_config": json.dumps(config)})


def load_generator(
    path: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[PseudoLabelGenerator, dict]:
    """(generator in eval mode on ``device``, config) from :func:`save_generator`'s file. The
    encoder is rebuilt without pretrained weights: the file holds all of them."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        config = json.loads((handle.metadata() or {}).get("exits_config", "{}"))
    if "encoder" not in config:
        raise ValueError(f"{path} is not an EXITS generator file (no exits_config metadata)")
    model = build_generator(config["encoder"], pretrained=False)
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.eval().to(device), config
