"""Backbones: patch features and/or a self-attention (affinity) matrix for an image.

Build by name with :func:`build_backbone`; each returns a :class:`Backbone`.
"""

from .base import Affinity, Backbone, build_backbone, list_backbones, register_backbone

__all__ = ["Affinity", "Backbone", "build_backbone", "list_backbones", "register_backbone"]
