import json

import pytest

from inference.methods.exits import batch as batch_module
from inference.methods.exits.batch import finished_objects, records_from_coco, run_exits
from inference.methods.exits.train import ExitsConfig

CONFIG = ExitsConfig(
    encoder="tiny-conv",
    crop_size=64,
    batch_size=4,
    warmup_epochs=1,
    epochs=2,
    crf_iterations=2,
    generate_batch_size=2,
)


def test_interrupted_job_resumes_without_redoing_finished_work(shapes_coco, tmp_path, monkeypatch):
    out = tmp_path / "run"
    calls: list[tuple[int, int, str]] = []

    def progress(done, total, stage):
        calls.append((done, total, stage))

    # 1. stop during generator training: warm-up done, retrieval written, no generator yet
    def stop_in_generator():
        return any(stage == "generator" and done >= 2 for done, _, stage in calls)

    first = run_exits(
        shapes_coco, out, config=CONFIG, progress=progress, should_stop=stop_in_generator
    )
    assert not first["completed"]
    assert (out / "checkpoints" / "warmup.pt").exists() and (out / "retrieval.npz").exists()
    assert not (out / "generator.safetensors").exists()

    # 2. rerun, stop after the first generated objects
    calls.clear()
    second = run_exits(
        shapes_coco,
        out,
        config=CONFIG,
        progress=progress,
        should_stop=lambda: any(stage == "generate" for _, _, stage in calls),
    )
    assert not any(stage == "warmup" for _, _, stage in calls), "warm-up must not be redone"
    generator_steps = [done for done, _, stage in calls if stage == "generator"]
    assert generator_steps and min(generator_steps) > 2, (
        "generator training resumes at its checkpoint"
    )
    assert not second["completed"]
    partial = finished_objects(out / "results.jsonl")
    assert 0 < len(partial) < 8
    before = (out / "results.jsonl").read_text()

    # 3. rerun to the end: earlier objects are not recomputed
    computed: list[int] = []
    original = batch_module.mask_annotation

    def spy(record, *args, **kwargs):
        computed.append(record.ann_id)
        return original(record, *args, **kwargs)

    monkeypatch.setattr(batch_module, "mask_annotation", spy)
    calls.clear()
    third = run_exits(shapes_coco, out, config=CONFIG, progress=progress)
    assert third["completed"]
    assert not set(computed) & set(partial), "finished objects were recomputed"
    assert (out / "results.jsonl").read_text().startswith(before)
    assert not any(stage in ("warmup", "generator") for _, _, stage in calls)

    coco = json.loads((out / "pseudo_masks.json").read_text())
    records, _ = records_from_coco(shapes_coco)
    ids = [a["id"] for a in coco["annotations"]]
    assert sorted(ids) == sorted(r.ann_id for r in records) and len(ids) == len(set(ids))
    for ann in coco["annotations"]:
        assert 0.0 <= ann["score"] <= 1.0 and ann["segmentation"]["counts"]


def test_a_torn_last_line_is_recomputed(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"id": 3}) + "\n" + '{"id": 4, "segm')
    assert set(finished_objects(path)) == {3}


def test_box_only_objects_get_no_points(shapes_coco):
    records, _ = records_from_coco(shapes_coco, use_masks=False)
    assert records and all(r.points is None for r in records)
    with pytest.raises(FileNotFoundError):
        records_from_coco(shapes_coco.parent / "missing.json")
