"""Per-worker access to the inference library, imported lazily."""
from __future__ import annotations


def available_methods() -> list[str]:
    """Names of the interactive methods this worker can build."""
    import inference

    return inference.list_methods()
