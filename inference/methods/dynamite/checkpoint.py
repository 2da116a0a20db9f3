"""Loading DynaMITe weights: official detectron2 pickles (``{"model": state_dict, …}``) or our
safetensors files (state dict + the config as JSON in the metadata).

Loads are strict: every checkpoint key must match a parameter or persistent buffer of the model
built from the config, and vice versa (spec A5.3).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from .model import DynaMITe, DynamiteConfig

CONFIG_KEY = "dynamite_config"


class UntrustedPickle(ValueError):
    """A pickle that holds more than plain tensors and containers, opened without ``trusted``."""


def read_state_dict(
    path: str | Path, *, trusted: bool = False
) -> tuple[dict[str, torch.Tensor], DynamiteConfig | None]:
    """(state dict on CPU, config stored with it or None) from a ``.safetensors`` file or a torch
    pickle whose ``"model"`` entry is the state dict (detectron2 checkpointer layout; other
    entries such as ``iteration`` are ignored).

    Pickles are opened with ``weights_only=True``. A file that needs more (official files may
    hold numpy scalars in extra entries) is refused with :class:`UntrustedPickle` unless
    ``trusted`` — a full unpickle runs whatever code the file names, so only a person who
    trusts the file may allow it (``convert_to_safetensors(..., trusted=True)`` on their own
    machine); the platform never does.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device="cpu") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open: not iterable)
            meta = f.metadata() or {}
        config = DynamiteConfig(**json.loads(meta[CONFIG_KEY])) if CONFIG_KEY in meta else None
        return state, config
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError subclasses and others here
        if not trusted:
            reason = (
                str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            )
            raise UntrustedPickle(
                f"{path.name} holds more than plain tensors ({reason}); it was not unpickled. "
                "Convert it where you trust it: python -m inference.methods.dynamite.checkpoint "
                "SRC DST.safetensors --trusted, then upload the .safetensors"
            ) from exc
        blob = torch.load(path, map_location="cpu", weights_only=False)
    state = blob.get("model", blob) if isinstance(blob, dict) else blob
    state = {
        k: (v if isinstance(v, torch.Tensor) else torch.as_tensor(v)) for k, v in state.items()
    }
    return state, None


def guess_config(state: dict[str, torch.Tensor]) -> DynamiteConfig:
    """The released configs, told apart by their backbone keys."""
    if "backbone.stem.conv1.weight" in state:
        return DynamiteConfig(backbone="resnet50", pretrained_backbone=False)
    if "backbone.patch_embed.proj.weight" in state:
        if state["backbone.patch_embed.proj.weight"].shape[0] != 96:
            raise ValueError("only Swin-T is supported among the Swin checkpoints")
        return DynamiteConfig(backbone="swin_tiny", pretrained_backbone=False)
    if "backbone.body.conv_stem.weight" in state:
        # our own effnet models are trained and served at 512 px on the long side
        return DynamiteConfig(
            backbone="effnet-lite0", short_side=512, max_side=512, pretrained_backbone=False
        )
    raise ValueError("cannot tell the backbone of this checkpoint; pass config=")


def load_model(
    path: str | Path,
    config: DynamiteConfig | None = None,
    device: str | torch.device = "cpu",
    *,
    trusted: bool = False,
) -> DynaMITe:
    """A :class:`DynaMITe` in eval mode with the weights of ``path`` loaded strictly.

    ``config``: the architecture; default the one stored in a safetensors file, else guessed
    from the keys (R50 / Swin-T official configs, 800/1333 resize). Backbone ImageNet weights
    are never loaded here (the checkpoint has the fine-tuned ones).
    """
    state, stored = read_state_dict(path, trusted=trusted)
    config = config or stored or guess_config(state)
    config = dataclasses.replace(config, pretrained_backbone=False)
    model = DynaMITe(config)
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def save_model(model: DynaMITe, path: str | Path, config: DynamiteConfig | None = None) -> None:
    """Write the state dict as safetensors with the config JSON in the metadata."""
    from safetensors.torch import save_file

    config = config or model.config
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={CONFIG_KEY: json.dumps(dataclasses.asdict(config))})


def convert_to_safetensors(
    src: str | Path, dst: str | Path, config: DynamiteConfig | None = None, *, trusted: bool = False
) -> DynamiteConfig:
    """Convert an official pickle to safetensors (loading it strictly first, so a file that does
    not match the architecture fails here, not at serving time). Returns the config used.
    ``trusted``: allow a full unpickle (see :func:`read_state_dict`)."""
    model = load_model(src, config, trusted=trusted)
    save_model(model, dst, model.config)
    return model.config


def main(argv: list[str] | None = None) -> int:
    """``python -m inference.methods.dynamite.checkpoint SRC DST [--backbone B] [--trusted]``."""
    import argparse

    parser = argparse.ArgumentParser(
        description="convert a DynaMITe checkpoint to safetensors (strict)"
    )
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument(
        "--backbone", choices=["resnet50", "swin_tiny", "effnet-lite0"], default=None
    )
    parser.add_argument(
        "--trusted", action="store_true", help="allow a full unpickle of SRC (runs its code)"
    )
    args = parser.parse_args(argv)
    config = (
        DynamiteConfig(backbone=args.backbone, pretrained_backbone=False) if args.backbone else None
    )
    used = convert_to_safetensors(args.src, args.dst, config, trusted=args.trusted)
    print(f"wrote {args.dst} ({used.backbone})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
