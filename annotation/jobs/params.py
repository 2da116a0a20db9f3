"""Job parameters from a launcher's JSON: unknown names refused, values converted, one error.

Torch-free: launch-time validators run in the web process.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from annotation.common.exceptions import ApplicationError

T = TypeVar("T")


def parse_params(cls: type[T], raw: dict[str, Any], what: str, casts: dict[str, Callable[[Any], Any]]) -> T:
    """``cls`` (a dataclass of defaults) with the values of ``raw`` converted by ``casts``
    (field → converter; a field missing from ``raw`` keeps its default). A name ``cls`` does
    not have, or a value its converter refuses, is an :class:`ApplicationError` naming it."""
    unknown = set(raw) - set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    if unknown:
        raise ApplicationError(f"unknown {what} parameters {sorted(unknown)}")
    try:
        return cls(**{name: cast(raw[name]) for name, cast in casts.items() if name in raw})
    except (TypeError, ValueError) as exc:
        raise ApplicationError(f"bad {what} parameter: {exc}") from exc


def optional_int(value: Any) -> int | None:
    """An id a form may leave empty: None or "" is None."""
    return int(value) if value not in (None, "") else None
