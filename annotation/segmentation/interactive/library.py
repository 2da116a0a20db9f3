"""The method library as this deployment sees it: ``inference`` with its plugin methods."""

from __future__ import annotations

from django.conf import settings


def registry():
    """The ``inference`` package with the deployment's plugin methods registered (the
    registry's metadata reads import no torch)."""
    import inference

    inference.load_plugins(settings.MASKWRIGHT["METHOD_PLUGINS"])
    return inference
