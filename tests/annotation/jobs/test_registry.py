"""Job kinds and the ids their parameters may name register from the apps that own them (in
``AppConfig.ready()``); the jobs app only keeps the registries."""

from __future__ import annotations

import pytest

from annotation.common.exceptions import ApplicationError
from annotation.jobs.engine import INTERNAL, QUEUES, RUNNERS, VALIDATORS
from annotation.jobs.models import Job
from annotation.jobs.params import ID_PARAMS, check_ids_in_project, register_id_param


def test_every_kind_is_registered_with_its_queue_and_launch_check():
    # the platform's own kinds, the pseudo-label kinds the segmentation app registers, and
    # the datasets app's attach of a bucket
    assert (
        set(Job.Kind.values)
        < set(RUNNERS)
        == set(Job.Kind.values)
        | {
            "mis",
            "exits",
            "sam3_text",
            "attach",
        }
    )
    assert QUEUES == {
        "verify": "default",
        "attach": "default",
        "export": "default",
        "mis": "batch",
        "exits": "batch",
        "sam3_text": "batch",
        "train": "batch",
        "model_import": "batch",
    }
    assert set(VALIDATORS) == {"export", "mis", "exits", "train", "sam3_text", "attach"}
    # started by the model upload / the dataset's attach (after its check), refused by the
    # jobs API
    assert INTERNAL == {"model_import", "attach"}
    assert sorted(ID_PARAMS) == ["bucket", "dataset", "image", "label", "model"]


def test_an_id_parameter_is_checked_by_the_app_that_registered_its_noun(monkeypatch):
    seen = []

    def widgets_in_project(ids: set[int], project_id: int) -> set[int]:
        seen.append((ids, project_id))
        return {i for i in ids if i < 10}

    monkeypatch.setitem(ID_PARAMS, "widget", None)  # restored (removed) after the test
    register_id_param("widget", widgets_in_project)
    check_ids_in_project({"options": {"spare_widget_ids": [1, "2", None]}}, project_id=7)
    assert seen == [({1, 2}, 7)]
    with pytest.raises(ApplicationError, match="widget 12 is not a widget of this project"):
        check_ids_in_project({"widget_id": 12}, project_id=7)
    with pytest.raises(ApplicationError, match="unknown id parameter 'gadget_id'"):
        check_ids_in_project({"gadget_id": 1}, project_id=7)
