"""Assertions shared by the backbone tests."""

from __future__ import annotations

import torch


def assert_row_stochastic(matrix: torch.Tensor, n: int, atol: float = 1e-5) -> None:
    """(n, n) float32, non-negative, every row summing to 1 within ``atol``."""
    assert matrix.shape == (n, n)
    assert matrix.dtype == torch.float32
    assert bool((matrix >= 0).all())
    torch.testing.assert_close(
        matrix.sum(dim=1), torch.ones(n, device=matrix.device), atol=atol, rtol=0
    )
