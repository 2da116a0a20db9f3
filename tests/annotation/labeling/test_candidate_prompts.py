"""The ``candidate`` prompt over REST and in the socket's schema: bounded the same way at both
doors, and allowed to the roles that may add prompts (``permissions.ADD_PROMPTS``)."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from annotation.labeling.models import METHOD_KINDS, Prompt
from annotation.labeling.protocol import SCHEMA_PATH, ProtocolError, parse
from annotation.segmentation.interactive.methods import MAX_CANDIDATES
from tests.factories import make_world


def test_the_schema_bounds_the_index_as_the_service_does():
    schema = json.loads(SCHEMA_PATH.read_text())
    index = schema["$defs"]["client"]["candidate"]["properties"]["index"]
    assert (index["minimum"], index["maximum"]) == (0, MAX_CANDIDATES - 1)
    assert "candidate" not in METHOD_KINDS  # no method reads it; the platform applies it
    ok = {"type": "candidate", "seq": 3, "object_id": 4, "index": MAX_CANDIDATES - 1}
    assert parse(json.dumps(ok)) == ok
    for bad in (MAX_CANDIDATES, -1, 1.5, True, "1", None):
        with pytest.raises(ProtocolError, match="index"):
            parse(json.dumps({**ok, "index": bad}))
    with pytest.raises(ProtocolError):
        parse(json.dumps({k: v for k, v in ok.items() if k != "index"}))


@pytest.mark.django_db
def test_rest_logs_a_choice_for_editors_of_a_prompted_object_only():
    w = make_world()
    url = f"/api/instances/{w.instance.id}/prompts/"
    choice = {"kind": "candidate", "payload": {"index": 1}}
    reviewer, annotator = APIClient(), APIClient()
    reviewer.force_login(w.users["reviewer"])
    annotator.force_login(w.users["annotator"])

    assert reviewer.post(url, choice, format="json").status_code == 403
    refused = annotator.post(url, choice, format="json")
    assert refused.status_code == 400 and "no prediction" in refused.json()["error"]["message"]
    click = {"kind": "click", "payload": {"x": 3, "y": 4, "positive": True}}
    assert annotator.post(url, click, format="json").status_code == 201
    too_far = {"kind": "candidate", "payload": {"index": MAX_CANDIDATES}}
    assert annotator.post(url, too_far, format="json").status_code == 400
    made = annotator.post(url, choice, format="json")
    assert made.status_code == 201 and made.json()["kind"] == "candidate"
    assert list(Prompt.objects.filter(instance=w.instance).values_list("kind", flat=True)) == [
        "click",
        "candidate",
    ]
