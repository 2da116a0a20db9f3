"""Backbone tests run offline: HF_HUB_OFFLINE=1 and no internet sockets for the whole folder."""

from __future__ import annotations

import socket

import numpy as np
import pytest


@pytest.fixture(scope="package", autouse=True)
def no_network():
    """Any attempt to open an internet connection fails the test that made it."""

    def refuse(self, address, *args, **kwargs):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"backbone tests must not touch the network (tried {address!r})")
        return real_connect(self, address, *args, **kwargs)

    real_connect = socket.socket.connect
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket.socket, "connect_ex", refuse)
        yield


@pytest.fixture
def rgb() -> np.ndarray:
    """A 90×120 random RGB image (uint8), deliberately not square."""
    return np.random.default_rng(0).integers(0, 256, size=(90, 120, 3), dtype=np.uint8)
