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
MAX_MESSAGE_BYTES = 256 * 1024


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


def parse(text: str) -> dict[str, Any]:
    """The message as a dict, or :class:`ProtocolError` saying what is wrong with it."""
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    seq = message.get("seq") if isinstance(message, dict) else None
    seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
    errors = sorted(validator().iter_errors(message), key=lambda e: (len(e.path), e.message))
    if errors:
        error = errors[0]
        where = "/".join(str(p) for p in error.path) or "message"
        raise ProtocolError(f"{where}: {error.message[:300]}", seq)
    return message
