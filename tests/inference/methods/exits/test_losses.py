import torch

from inference.methods.exits.losses import crf_loss, mil_loss, point_loss


def _box(h=16, w=16, y0=4, y1=12, x0=3, x1=13):
    box = torch.zeros(1, 1, h, w)
    box[..., y0:y1, x0:x1] = 1
    return box


def test_mil_is_zero_for_a_box_tight_mask_and_positive_otherwise():
    box = _box()
    cross = torch.zeros_like(box)  # a "+" touching every row and column of the box
    cross[..., 8, 3:13] = 1
    cross[..., 4:12, 8] = 1
    assert mil_loss(box, box).item() < 1e-3
    assert mil_loss(cross, box).item() < 1e-3
    shrunk = torch.zeros_like(box)
    shrunk[..., 6:10, 6:10] = 1  # misses the box's outer rows and columns
    assert mil_loss(shrunk, box).item() > 0.3
    assert mil_loss(torch.full_like(box, 0.5), box).item() > 0.1


def test_point_loss_is_minimal_on_a_confident_correct_prediction():
    logits = torch.full((1, 1, 8, 8), -12.0)
    logits[..., :, :4] = 12.0  # left half is the object
    points = torch.tensor([[[-0.5, 0.0], [0.5, 0.0], [0.0, 0.0]]])  # left, right, padding
    labels = torch.tensor([[1.0, 0.0, 1.0]])
    valid = torch.tensor([[True, True, False]])
    assert point_loss(logits, points, labels, valid).item() < 1e-4
    assert point_loss(-logits, points, labels, valid).item() > 5
    assert point_loss(torch.zeros_like(logits), points, labels, valid).item() > 0.6


def test_crf_is_near_zero_on_a_mask_that_follows_the_colours():
    image = torch.zeros(1, 3, 16, 16)
    image[..., 4:12, 3:13] = 2.0  # the object has another colour
    box = _box()
    perfect = _box().clone()
    assert crf_loss(perfect, image, box).item() < 1e-3
    noisy = perfect.clone()
    noisy[..., 5:9, 5:9] = 0.2  # a hole inside a uniform region
    assert crf_loss(noisy, image, box).item() > 0.01
    assert crf_loss(torch.full_like(perfect, 0.5) * box, image, box).item() > 0.05


def test_point_loss_weighs_each_class_equally_per_object():
    # Retrieval finds far more BG than FG points: an empty mask must not win by the count of BG.
    logits = torch.full((2, 1, 8, 8), -12.0)  # everything background, confidently
    fg = [[-0.5, 0.0]]
    bg = [[0.5, y] for y in (-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 0.9, -0.9)]
    points = torch.tensor([fg + bg, fg + bg])
    labels = torch.tensor([[1.0] + [0.0] * 9, [0.0] * 10])
    valid = torch.ones(2, 10, dtype=torch.bool)
    loss = point_loss(logits, points, labels, valid)
    # object 0: (12 + ~0) / 2 ≈ 6 (a plain mean over the 10 points gave ≈ 1.2)
    assert 5.5 < loss[0].item() < 6.5
    assert loss[1].item() < 1e-4  # BG points only: their mean, all correct
    assert point_loss(logits, points, labels, torch.zeros_like(valid)).abs().max().item() == 0.0
