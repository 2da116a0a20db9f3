"""Adding a batch job is one registration too: the toy method's proposals job (declared in a
test module only) becomes a job kind with its form, is validated from its ``Param`` s and
runs through the generic proposals runner."""

from __future__ import annotations

import numpy as np
import pytest
from rest_framework.test import APIClient

from annotation.jobs import engine
from annotation.jobs.engine import job_execute
from annotation.jobs.models import Job
from annotation.labeling.models import Instance
from annotation.segmentation.batch import runs
from tests.annotation.segmentation.interactive import toy_method
from tests.factories import make_world

pytestmark = pytest.mark.django_db

KIND = toy_method.PROPOSALS.kind


@pytest.fixture
def toy_kind():
    """The toy's kind registered (the app's start-up ran before the test imported it), then
    forgotten so that other tests see the built-in kinds only."""
    runs.register_all()
    yield KIND
    for table in (engine.RUNNERS, engine.QUEUES, engine.VALIDATORS, engine.FORMS):
        table.pop(KIND, None)


def test_the_toy_batch_job_is_listed_validated_and_run(toy_kind):
    w = make_world()
    client = APIClient()
    client.force_login(w.users["manager"])
    kinds = {k["kind"]: k for k in client.get("/api/jobs/kinds/").json()}
    form = kinds[toy_kind]
    assert (form["label"], form["capability"], form["method"]) == (
        "Toy bright regions",
        "proposals",
        toy_method.NAME,
    )
    assert [p["name"] for p in form["params"]] == ["shift", "skip_existing", "label_id"]

    url = f"/api/projects/{w.project.id}/jobs/"
    refused = client.post(
        url,
        {"dataset_id": w.dataset.id, "kind": toy_kind, "params": {"shift": 999}},
        format="json",
    )
    assert refused.status_code == 400
    assert "shift must be an integer in [-255, 255]" in refused.json()["error"]["message"]

    launched = client.post(
        url,
        {"dataset_id": w.dataset.id, "kind": toy_kind, "params": {"label_id": w.label.id}},
        format="json",
    )
    assert launched.status_code == 201, launched.json()
    job = Job.objects.get(pk=launched.json()["id"])
    assert engine.QUEUES[toy_kind] == "batch"
    assert job_execute(job.id) == "succeeded"
    job.refresh_from_db()
    made = Instance.objects.filter(image__dataset=w.dataset, source=toy_method.NAME)
    images = w.dataset.images.count()
    assert job.result["instances"] == made.count() > 0 and job.done == job.total == images
    assert all(i.pseudo and i.label_id == w.label.id and i.model_name == "brighter+0" for i in made)
    # the mask is the method's: the bright pixels of the image
    one = made.first()
    from annotation.common import rle
    from annotation.datasets.storage import read_rgb

    gray = read_rgb(one.image.file).mean(axis=2)
    assert np.array_equal(rle.decode(one.mask), gray > gray.mean())
