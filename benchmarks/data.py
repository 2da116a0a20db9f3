"""What platform benchmarks borrow from ``inference``: real images with ground truth, a click
simulator, and the model timed alone (the peer that the socket's overhead is measured from)."""

from __future__ import annotations

import io
import statistics
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class BenchImage:
    name: str
    png: bytes  # the image as uploaded
    gt: np.ndarray  # H×W bool

    def new_clicker(self):
        from inference.evaluation.clicker import Clicker

        return Clicker(self.gt)


def images(count: int, long_side: int = 512) -> tuple[list[BenchImage], str]:
    """``count`` GrabCut images resized to ``long_side`` (or synthetic ones when the shared
    data is absent), and where they came from."""
    from PIL import Image

    from benchmarks import shared_dir

    root = shared_dir() / "data" / "grabcut"
    out: list[BenchImage] = []
    if root.is_dir():
        from inference.evaluation.datasets import load_dataset

        dataset = load_dataset(root)
        for sample in list(dataset)[:count]:
            h, w = sample.gt.shape
            scale = long_side / max(h, w)
            size = (round(w * scale), round(h * scale))
            rgb = Image.fromarray(sample.image).resize(size, Image.Resampling.BILINEAR)
            gt = (
                np.asarray(
                    Image.fromarray(sample.gt.astype(np.uint8) * 255).resize(
                        size, Image.Resampling.NEAREST
                    )
                )
                > 127
            )
            buf = io.BytesIO()
            rgb.save(buf, "PNG")
            out.append(BenchImage(sample.name, buf.getvalue(), gt))
        return out, f"GrabCut ({root}), {long_side} px long side"
    rng = np.random.default_rng(0)
    for i in range(count):
        h, w = long_side * 3 // 4, long_side
        arr = rng.integers(0, 70, size=(h, w, 3), dtype=np.uint8)
        gt = np.zeros((h, w), dtype=bool)
        cy, cx, r = h // 2 + 10 * i, w // 2 - 15 * i, h // 4
        yy, xx = np.ogrid[:h, :w]
        gt[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = True
        arr[gt] = rng.integers(150, 255, size=(int(gt.sum()), 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "PNG")
        out.append(BenchImage(f"synthetic-{i}", buf.getvalue(), gt))
    return out, f"synthetic discs ({long_side} px; ../shared/data/grabcut is absent)"


def model_alone(
    samples: list[BenchImage],
    clicks_per_image: int,
    method: str = "m2n2",
    backbone: str = "effnet-lite0",
) -> dict[str, float]:
    """The peer: the same method in this process on the same images and simulated clicks, no
    socket, queue or database. Seconds: set_image p50, first click p50, later clicks p50/p95."""
    from PIL import Image

    from inference import build_predictor

    predictor = build_predictor(method, backbone=backbone)
    set_image, first, later = [], [], []
    for sample in samples:
        rgb = np.asarray(Image.open(io.BytesIO(sample.png)).convert("RGB"))
        started = time.perf_counter()
        predictor.set_image(rgb)
        set_image.append(time.perf_counter() - started)
        clicker = sample.new_clicker()
        pred = None
        for i in range(clicks_per_image):
            if clicker.make_next_click(pred) is None:
                break
            started = time.perf_counter()
            pred = predictor.predict(clicker.clicks).mask
            (first if i == 0 else later).append(time.perf_counter() - started)
    return {
        "set_image_p50_s": statistics.median(set_image),
        "first_click_p50_s": statistics.median(first),
        "click_p50_s": statistics.median(later) if later else float("nan"),
        "click_p95_s": float(np.percentile(later, 95)) if later else float("nan"),
    }
