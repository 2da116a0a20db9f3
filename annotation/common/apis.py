"""Small helpers shared by the API modules."""
from __future__ import annotations

from typing import Any

from rest_framework import serializers


def validated(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict[str, Any]:
    """Validate ``data`` with ``serializer_class`` and return the clean dict (400 on errors)."""
    ser = serializer_class(data=data, **kwargs)
    ser.is_valid(raise_exception=True)
    return dict(ser.validated_data)
