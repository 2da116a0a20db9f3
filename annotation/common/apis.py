"""Small helpers shared by the API modules."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


def validated(
    serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any
) -> dict[str, Any]:
    """Validate ``data`` with ``serializer_class`` and return the clean dict (400 on errors)."""
    ser = serializer_class(data=data, **kwargs)
    ser.is_valid(raise_exception=True)
    return dict(ser.validated_data)


# Postgres column ranges. A number outside them reaches the database as a DataError, a 500;
# bounded in the serializer it is a 400 naming the field.
INT_MAX = 2**31 - 1  # integer / positive integer columns
BIGINT_MAX = 2**63 - 1  # ids (BigAutoField)


def id_field(**kwargs: Any) -> serializers.IntegerField:
    """An integer field for a row id: positive and within ``bigint``."""
    return serializers.IntegerField(min_value=1, max_value=BIGINT_MAX, **kwargs)


def int_field(**kwargs: Any) -> serializers.IntegerField:
    """An integer field stored in an ``integer`` column (z-order, versions)."""
    kwargs.setdefault("min_value", -INT_MAX - 1)
    return serializers.IntegerField(max_value=INT_MAX, **kwargs)
