"""DynaMITe training on synthetic shapes: data pipeline, loss falls, resume, cancel, CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inference.methods.dynamite.data import (
    CocoTrainDataset,
    augment,
    select_objects,
    split_image_ids,
)
from inference.methods.dynamite.model import DynamiteConfig
from inference.methods.dynamite.train import (
    TrainConfig,
    latest_checkpoint,
    main,
    param_groups,
    train,
)


def _polygon(y0: int, x0: int, y1: int, x1: int) -> list[list[float]]:
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _ellipse_rle(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> dict:
    from pycocotools import mask as mask_utils

    yy, xx = np.mgrid[:h, :w]
    m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode()
    return rle


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> tuple[Path, Path]:
    """Six 96×128 noise images with 2–3 bright rectangles/ellipses each, as a COCO json."""
    root = tmp_path_factory.mktemp("shapes")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(6):
        h, w = 96, 128
        img = rng.integers(0, 80, size=(h, w, 3), dtype=np.uint8)
        for k in range(2 + i % 2):
            colour = rng.integers(150, 256, size=3, dtype=np.uint8)
            y0, x0 = int(rng.integers(0, h - 40)), int(rng.integers(0, w - 50))
            y1, x1 = y0 + int(rng.integers(24, 40)), x0 + int(rng.integers(30, 50))
            if k % 2 == 0:
                seg = _polygon(y0, x0, y1, x1)
                img[y0:y1, x0:x1] = colour
                area = float((y1 - y0) * (x1 - x0))
            else:
                seg = _ellipse_rle(h, w, (y0 + y1) / 2, (x0 + x1) / 2, (y1 - y0) / 2, (x1 - x0) / 2)
                from pycocotools import mask as mask_utils

                m = mask_utils.decode(seg).astype(bool)
                img[m] = colour
                area = float(m.sum())
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": 1,
                    "iscrowd": 0,
                    "segmentation": seg,
                    "area": area,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                }
            )
        Image.fromarray(img).save(root / "images" / f"{i + 1:03d}.png")
        images.append({"id": i + 1, "file_name": f"{i + 1:03d}.png", "height": h, "width": w})
    anns.append(
        {
            "id": 999,
            "image_id": 1,
            "category_id": 1,
            "iscrowd": 1,
            "area": 5000.0,
            "segmentation": _polygon(0, 0, 50, 100),
            "bbox": [0, 0, 100, 50],
        }
    )
    path = root / "instances.json"
    path.write_text(
        json.dumps(
            {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "shape"}]}
        )
    )
    return path, root / "images"


def _config(shapes, out: Path, **kw) -> TrainConfig:
    annotations, images = shapes
    base = {
        "annotations": annotations,
        "images_dir": images,
        "output_dir": out,
        "model": DynamiteConfig.tiny(),
        "steps": 4,
        "batch_size": 2,
        "crop_size": 64,
        "num_points": 256,
        "checkpoint_every": 2,
        "max_interactions": 1,
        "lr": 1e-3,
        "grad_clip": 1.0,
        "seed": 3,
    }
    base.update(kw)
    return TrainConfig(**base)


def test_augment_and_select_objects():
    rng = np.random.default_rng(0)
    image = np.zeros((40, 80, 3), dtype=np.uint8)
    masks = np.zeros((4, 40, 80), dtype=bool)
    masks[0, :, :] = True  # large, under everything
    masks[1, 5:30, 5:30] = True
    masks[2, 10:20, 40:60] = True
    masks[3, 0:3, 0:3] = True  # 9 px: always dropped
    out_image, out_masks, padding = augment(image, masks, 64, rng, (0.5, 0.5))
    # scale 0.5·64/80 = 0.4 → 16×32 image, padded with grey to 64×64
    assert out_image.shape == (64, 64, 3) and out_masks.shape == (4, 64, 64)
    assert padding[:16, :32].sum() == 0 and padding.sum() == 64 * 64 - 16 * 32
    assert (out_image[padding] == 128).all() and not out_masks[:, padding].any()
    for seed in range(10):
        labels = select_objects(masks, np.random.default_rng(seed))
        assert labels is not None and labels.max() <= 2  # ⌊0.7·4⌋ = 2 kept, 9-px one dropped
        sizes = np.bincount(labels.ravel())[1:]
        assert (sizes > 50).all()
    # smaller objects win overlaps: object 1 keeps its square inside object 0
    both = [0, 1]
    labels = select_objects(masks[both], np.random.default_rng(0))
    assert labels is not None and labels.max() == 1  # ⌊0.7·2⌋ = 1


def test_dataset_filters_crowd_and_small(shapes):
    annotations, images = shapes
    ds = CocoTrainDataset(annotations, images, crop_size=64)
    assert len(ds) == 6
    s = ds.sample(0, np.random.default_rng(0))
    assert s.image.shape == (64, 64, 3) and s.labels.shape == (64, 64)
    assert s.n_objects >= 1 and not (s.background & s.masks.any(0)).any()
    assert not (s.background & s.padding).any()
    ids = split_image_ids(annotations, 4)
    assert ids == ([1, 2, 3, 4], [5, 6])
    assert len(CocoTrainDataset(annotations, images, crop_size=64, image_ids=ids[1])) == 2


def test_param_groups_split_backbone_lr_and_norm_decay(shapes, tmp_path):
    from inference.methods.dynamite.model import DynaMITe

    model = DynaMITe(DynamiteConfig.tiny())
    config = _config(shapes, tmp_path)
    groups = param_groups(model, config)
    counted = sum(len(g["params"]) for g in groups)
    assert counted == sum(1 for p in model.parameters() if p.requires_grad)
    by_id = {id(p): g for g in groups for p in g["params"]}
    for name, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            if not p.requires_grad:  # e.g. the all-zero padding query
                assert id(p) not in by_id
                continue
            g = by_id[id(p)]
            assert g["lr"] == pytest.approx(1e-4 if name.startswith("backbone") else 1e-3)
            if isinstance(module, (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.Embedding)):
                assert g["weight_decay"] == 0.0
            elif "static_bg_query" in pname:
                assert g["weight_decay"] == 0.05


def _mean_iou(model, shapes) -> float:
    """Mean object IoU of ``model`` on 24 fresh synthetic crops given their initial clicks."""
    from inference.methods.dynamite.clicks import object_ious, predicted_labels
    from inference.methods.dynamite.model import normalise_batch
    from inference.methods.dynamite.train import _StepBatches

    batches = _StepBatches(CocoTrainDataset(*shapes, crop_size=96), 4, seed=999)
    ious = []
    for step in range(6):
        samples, clicks, _ = batches[step]
        images = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2)
        with torch.no_grad():
            out = model.decode(model.encode(normalise_batch(images)), clicks)
        for b, s in enumerate(samples):
            pred = predicted_labels(out.logits[-1][b], out.owner[b], s.n_objects, s.valid)
            ious += list(object_ious(pred, s.labels, s.n_objects, s.valid))
    return float(np.mean(ious))


def test_loss_falls_and_masks_improve_on_synthetic_shapes(shapes, tmp_path):
    from inference.methods.dynamite.checkpoint import load_model

    seen = []
    config = _config(
        shapes,
        tmp_path,
        steps=120,
        checkpoint_every=0,
        crop_size=96,
        num_points=1024,
        max_interactions=3,
        grad_clip=0.01,
    )
    before = load_model(
        train(dataclasses.replace(config, steps=0, output_dir=tmp_path / "init")).model_path
    )
    result = train(config, progress=seen.append)
    assert result.step == 120 and not result.cancelled and result.model_path.exists()
    assert [p.step for p in seen] == list(range(1, 121)) and seen[-1].eta_s == 0
    assert seen[0].seconds_per_step > 0 and seen[0].total == 120
    first, last = np.mean(result.losses[:10]), np.mean(result.losses[-10:])
    assert last < 0.8 * first, result.losses
    after = load_model(result.model_path)
    assert after.config == DynamiteConfig.tiny()
    # untrained: ≈ 0.04 (background wins); after 120 steps ≈ 0.25 (0.6 after 600)
    iou_before, iou_after = _mean_iou(before, shapes), _mean_iou(after, shapes)
    assert iou_after > max(0.12, 2 * iou_before), (iou_before, iou_after)


def _params(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_resume_continues_at_the_right_step_with_identical_state(shapes, tmp_path):
    straight = train(_config(shapes, tmp_path / "a"))
    assert straight.step == 4
    calls = []

    def stop_after_two() -> bool:
        calls.append(1)
        return len(calls) > 2  # checked before steps 1, 2, 3: stop at 3

    first = train(_config(shapes, tmp_path / "b"), should_stop=stop_after_two)
    assert first.cancelled and first.step == 2 and first.model_path is None
    assert latest_checkpoint(tmp_path / "b") == first.checkpoint_path
    second = train(_config(shapes, tmp_path / "b"))
    assert second.resumed_from == 2 and second.step == 4 and len(second.losses) == 2
    assert second.losses == straight.losses[2:]
    a, b = _params(straight.checkpoint_path), _params(second.checkpoint_path)
    assert all(torch.equal(a[k], b[k]) for k in a)
    opt_a = torch.load(straight.checkpoint_path, weights_only=True)["optimizer"]
    opt_b = torch.load(second.checkpoint_path, weights_only=True)["optimizer"]
    for k, state in opt_a["state"].items():
        assert torch.equal(state["exp_avg"], opt_b["state"][k]["exp_avg"])


def test_cancel_before_first_step_leaves_a_resumable_checkpoint(shapes, tmp_path):
    result = train(_config(shapes, tmp_path, steps=2), should_stop=lambda: True)
    assert result.cancelled and result.step == 0 and result.checkpoint_path.exists()
    again = train(_config(shapes, tmp_path, steps=2))
    assert again.resumed_from == 0 and again.step == 2 and again.model_path.exists()
    # a finished run resumes to "nothing to do"
    done = train(_config(shapes, tmp_path, steps=2))
    assert done.resumed_from == 2 and done.losses == []
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*.pt"))
    assert kept == ["step_00000000.pt", "step_00000002.pt"]
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


def test_step_schedule_multiplies_the_lr_at_milestones(shapes, tmp_path):
    seen = []
    train(
        _config(
            shapes, tmp_path, steps=4, milestones=(1, 3), checkpoint_every=0, max_interactions=0
        ),
        progress=seen.append,
    )
    assert [p.lr for p in seen] == pytest.approx([1e-3, 1e-4, 1e-4, 1e-5])


def test_cli_runs_a_tiny_training(shapes, tmp_path, capsys):
    annotations, images = shapes
    code = main(
        [
            "--annotations",
            str(annotations),
            "--images",
            str(images),
            "--output",
            str(tmp_path),
            "--backbone",
            "tiny",
            "--steps",
            "1",
            "--crop-size",
            "64",
            "--checkpoint-every",
            "0",
            "--max-interactions",
            "0",
            "--seed",
            "1",
        ]
    )
    assert code == 0 and (tmp_path / "model.safetensors").exists()
    assert "done at step 1" in capsys.readouterr().out


@pytest.mark.gpu
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_on_cuda(shapes, tmp_path, amp):
    result = train(_config(shapes, tmp_path, amp=amp, device="cuda", steps=3, checkpoint_every=0))
    assert result.step == 3 and all(np.isfinite(result.losses))
    assert dataclasses.asdict(DynamiteConfig.tiny())


def test_data_workers_give_the_same_run(shapes, tmp_path):
    inline = train(_config(shapes, tmp_path / "a", steps=2, checkpoint_every=0))
    workers = train(_config(shapes, tmp_path / "b", steps=2, checkpoint_every=0, num_workers=1))
    assert workers.losses == inline.losses
