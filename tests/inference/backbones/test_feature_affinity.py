"""The feature affinity's self-exclusion: no mass on the diagonal, rows still stochastic."""

from __future__ import annotations

import torch

from inference.backbones.feature_affinity import cosine_affinity


def test_exclude_self_zeroes_the_diagonal_and_keeps_rows_stochastic():
    torch.manual_seed(0)
    features = torch.randn(8, 5, 6)
    plain = cosine_affinity(features, scale=30.0)
    assert plain.diagonal().min() > 0.5  # a sharp scale makes the self term dominate
    excluded = cosine_affinity(features, scale=30.0, exclude_self=True)
    assert torch.all(excluded.diagonal() == 0)
    assert torch.allclose(excluded.sum(1), torch.ones(30), atol=1e-5)
