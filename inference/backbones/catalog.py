"""Imports every backbone module so that its builders register (see base._load_all).

Each module imports only numpy and torch at the top; timm, diffusers and transformers are imported
inside the builders, so listing the backbones stays cheap.
"""

from . import effnet, sd2, vit  # noqa: F401
