"""An uploaded checkpoint is imported by a real batch worker: loaded strictly, kept as
safetensors, ready; a file that is not a matching checkpoint fails with the reason."""

from __future__ import annotations

import io
import pickle

import pytest
import torch
from rest_framework.test import APIClient

from annotation.datasets import storage
from annotation.modelstore.models import TrainedModel
from tests.factories import make_world, wait_for_job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def _upload(client, project_id, data: bytes, filename: str, **fields):
    f = io.BytesIO(data)
    f.name = filename
    response = client.post(
        f"/api/projects/{project_id}/models/",
        {"method": "dynamite", "file": f, **fields},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return response.json()


class Evil:
    """Unpickling this would run code: a worker must refuse such a file, never load it."""

    def __reduce__(self):
        return (print, ("unpickled!",))


def test_an_upload_is_checked_converted_and_ready(celery_worker_proc, tmp_path):
    from inference.methods.dynamite.checkpoint import load_model, save_model
    from inference.methods.dynamite.model import DynaMITe, DynamiteConfig

    w = make_world()
    client = APIClient()
    client.force_login(w.users["owner"])
    # (a detectron2 pickle of the official R50/Swin-T layout takes the same path; its strict
    # load is tested in tests/inference/methods/dynamite/test_checkpoint.py — a tiny network's
    # architecture cannot be told from its keys, so it travels as safetensors with its config)
    net = DynaMITe(DynamiteConfig.tiny())
    save_model(net, tmp_path / "tiny.safetensors")
    body = _upload(
        client,
        w.project.id,
        (tmp_path / "tiny.safetensors").read_bytes(),
        "tiny.safetensors",
        name="tiny published",
    )
    job = wait_for_job(body["job"], {"succeeded", "failed"}, timeout=120)
    assert job.state == "succeeded", job.error
    model = TrainedModel.objects.get(pk=body["id"])
    assert (
        model.state == "ready"
        and model.file.endswith(".safetensors")
        and model.config["backbone"] == "tiny"
    )
    loaded = load_model(storage.media_path(model.file))
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert model.name == "tiny published" and model.origin == "uploaded"

    # a state dict of another network: strict loading names the problem
    buffer = io.BytesIO()
    torch.save({"model": {"backbone.unknown.weight": torch.zeros(3)}, "iteration": 7}, buffer)
    bad = _upload(client, w.project.id, buffer.getvalue(), "other.pth", backbone="resnet50")
    job = wait_for_job(bad["job"], {"succeeded", "failed"}, timeout=120)
    failed = TrainedModel.objects.get(pk=bad["id"])
    assert job.state == "failed" and failed.state == "failed"
    assert "Missing key" in failed.error or "Unexpected key" in failed.error, failed.error

    # a pickle that would run code when loaded is refused without being unpickled
    evil = _upload(
        client, w.project.id, pickle.dumps({"model": Evil()}), "evil.pkl", backbone="resnet50"
    )
    job = wait_for_job(evil["job"], {"succeeded", "failed"}, timeout=120)
    failed = TrainedModel.objects.get(pk=evil["id"])
    assert job.state == "failed" and "more than plain tensors" in failed.error, failed.error
