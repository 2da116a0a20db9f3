"""Reading the environment, in one place.

Every setting that differs between a laptop, CI and a deployment comes from an environment
variable read here, so the settings modules stay declarative.
"""

from __future__ import annotations

import os
from pathlib import Path

# platform/config/env.py -> the repository root (or site-packages when installed as a wheel).
REPO_ROOT = Path(__file__).resolve().parents[2]


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from exc


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={value!r} is not a number") from exc


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def data_home() -> Path:
    """The one folder holding everything the platform writes (database, Redis, media)."""
    return Path(env_str("MASKWRIGHT_HOME", str(REPO_ROOT / ".maskwright"))).resolve()
