"""The prototype step after label spreading."""

import numpy as np
import torch
import torch.nn.functional as F

from inference.methods.salt.prototypes import prototype_refine, spherical_kmeans


def _nodes(rng):
    """Object core (near e0), an object part the graph left unlabelled (near e0 + e3, cosine
    ≈ 0.9 to the core) and background in two looks (near e1 and e2)."""
    centres = torch.eye(4)
    part = F.normalize(centres[0] + 0.5 * centres[3], dim=0)
    groups = [centres[0], part, centres[1], centres[2]]
    x = torch.cat(
        [g + 0.02 * torch.from_numpy(rng.standard_normal((10, 4))).float() for g in groups]
    )
    return F.normalize(x, dim=1)


def test_an_unlinked_part_of_an_object_joins_it_and_seeds_stay_put():
    x = _nodes(np.random.default_rng(0))
    seeds = -np.ones(40, np.int64)
    seeds[0], seeds[20] = 1, 0  # one click on the object core, one on background
    probs = np.full((40, 2), 0.5, np.float32)  # nothing reached by spreading: uniform rows …
    probs[:10] = (0.1, 0.9)  # … except the object core
    probs[20:40] = (0.9, 0.1)  # and both looks of the background
    # one background centre: the unreached part's tie goes to the background's k-means, and
    # four centres would give it one of its own
    out = prototype_refine(x, probs, seeds, background_prototypes=1)
    labels = out.argmax(axis=1)
    assert (labels[:20] == 1).all() and (labels[20:] == 0).all()
    assert out[0].tolist() == [0.0, 1.0] and out[20].tolist() == [1.0, 0.0]
    assert np.allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_mix_zero_keeps_the_spreading_answer():
    x = _nodes(np.random.default_rng(1))
    seeds = -np.ones(40, np.int64)
    seeds[0], seeds[20] = 1, 0
    probs = np.random.default_rng(2).dirichlet((1, 1), 40).astype(np.float32)
    out = prototype_refine(x, probs, seeds, mix=0.0)
    free = seeds < 0
    assert np.allclose(out[free], probs[free])


def test_kmeans_finds_both_looks_and_handles_empty_weights():
    x = _nodes(np.random.default_rng(3))
    weights = torch.zeros(40)
    weights[20:] = 1.0
    centres = spherical_kmeans(x, weights, 2)
    assert centres.shape == (2, 4)
    best = torch.sort(centres.argmax(dim=1)).values
    assert best.tolist() == [1, 2]
    assert spherical_kmeans(x, torch.zeros(40), 3) is None
    assert spherical_kmeans(x, weights, 50).shape[0] == 20  # no more centres than weighted nodes
