import numpy as np
import torch

from inference.methods.exits.propagation import propagate, retrieve_points, sinkhorn


def test_propagation_is_alpha_matrix_vector_products():
    t = torch.tensor([[0.5, 0.5, 0.0], [0.25, 0.5, 0.25], [0.0, 0.5, 0.5]])
    f0 = torch.tensor([1.0, 0.0, 0.0])
    for steps in (1, 2, 3):
        expected = torch.linalg.matrix_power(t, steps) @ f0
        torch.testing.assert_close(propagate(t, f0, steps), expected)
    # two steps by hand: row i takes the T-weighted mean of the mass of the points it attends to
    torch.testing.assert_close(propagate(t, f0, 2), torch.tensor([0.375, 0.25, 0.125]))


def test_mass_stays_in_its_cluster():
    block = torch.full((3, 3), 1.0)
    s = torch.block_diag(block, block) + 1e-3
    t = sinkhorn(s)
    f = propagate(t, torch.tensor([1.0, 0, 0, 0, 0, 0]), 3)
    assert f[:3].min() > 100 * f[3:].max()


def test_sinkhorn_is_nearly_doubly_stochastic():
    torch.manual_seed(0)
    s = torch.rand(64, 64) ** 4 * 10
    s[:, 0] += 20  # a "hub" column everyone attends to
    t = sinkhorn(s, iterations=20)
    torch.testing.assert_close(t.sum(1), torch.ones(64))
    torch.testing.assert_close(t.sum(0), torch.ones(64), atol=1e-2, rtol=0)
    assert (t >= 0).all()


def test_retrieved_points_never_leave_the_box():
    rng = np.random.default_rng(0)
    size, grid = 64, (8, 8)
    for trial in range(25):
        s = torch.from_numpy(rng.random((64, 64)).astype(np.float32) ** 3)
        t = sinkhorn(s)
        x0, y0 = rng.uniform(0, 30, size=2)
        x1, y1 = x0 + rng.uniform(8, 34), y0 + rng.uniform(8, 34)
        seeds = np.array(
            [
                [x0 + 1, (y0 + y1) / 2],
                [x1 - 1, (y0 + y1) / 2],
                [(x0 + x1) / 2, y0 + 1],
                [(x0 + x1) / 2, y1 - 1],
            ]
        )
        got = retrieve_points(t, grid, seeds, (x0, y0, x1, y1), size, tau_fg=-1.0, tau_bg=-1.0)
        cell = size / 8
        for y, x in np.argwhere(got.foreground | got.background):
            cx, cy = (x + 0.5) * cell, (y + 0.5) * cell
            assert x0 <= cx <= x1 and y0 <= cy <= y1
        assert not (got.foreground & got.background).any()


def test_retrieval_finds_the_seeded_cluster():
    # a 4×4 grid whose left half is one cluster: seeds in the left half, box = whole grid
    labels = np.array([[0, 0, 1, 1]] * 4).reshape(-1)
    s = torch.from_numpy((labels[:, None] == labels[None, :]).astype(np.float32) + 1e-3)
    got = retrieve_points(sinkhorn(s), (4, 4), np.array([[4.0, 4.0]]), (0, 0, 16, 16), 16)
    assert got.foreground[:, :2].sum() >= 6 and not got.foreground[:, 2:].any()
