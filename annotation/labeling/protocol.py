"""Reading the annotation socket's messages against ``protocol.schema.json``.

The schema is the contract shared with the browser (``frontend/js/annotate``); the server
refuses anything it does not describe, with a message naming the first problem.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("protocol.schema.json")
MAX_MESSAGE_BYTES = 64 * 1024  # a 2000-point stroke is ~36 KB; parsing is what a flood costs
# The deepest valid message (a stroke: message → points → [x, y]) has 3 levels. Deeper ones are
# refused before the schema walks them: json.loads and jsonschema both recurse per level, and a
# RecursionError (from ``[`` × 100000) used to drop the sender's socket without a close frame.
MAX_DEPTH = 16


class ProtocolError(ValueError):
    """A message that is not JSON or not one the schema allows. ``seq`` when it could be read."""

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


@lru_cache(maxsize=1)
def validator():
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists/objects in ``value`` nest more than ``limit`` levels (no recursion)."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse(text: str) -> dict[str, Any]:
    """The message as a dict, or :class:`ProtocolError` saying what is wrong with it."""
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError(f"JSON nested more than {MAX_DEPTH} levels deep") from None
    if _deeper_than(message, MAX_DEPTH):
        raise ProtocolError(f"JSON nested more than {MAX_DEPTH} levels deep")
    seq = message.get("seq") if isinstance(message, dict) else None
    seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
    errors = sorted(validator().iter_errors(message), key=lambda e: (len(e.path), e.message))
    if errors:
        error = errors[0]
        where = "/".join(str(p) for p in error.path) or "message"
        raise ProtocolError(f"{where}: {error.message[:300]}", seq)
    return message
