"""Batch jobs as metadata: typed, bounded parameters and the jobs the methods declare."""

from __future__ import annotations

import json

import pytest

from inference import BatchJob, MethodInfo, Param, batch_jobs, register_method
from inference.jobs import CAPABILITIES, parse_params
from inference.registry import _BUILDERS, _INFOS

CROP = Param("crop", "Crop", "int", 64, minimum=64, maximum=1024, step=32)
RATE = Param("rate", "Rate", "float", 0.1, minimum=0.0, maximum=1.0)
MODE = Param("mode", "Mode", "choice", "a", choices=(("a", "A"), ("b", "B")))
FLAG = Param("flag", "Flag", "bool", True)
NAME = Param("name", "Name", "text", "", maximum=5)
MODEL = Param("model_id", "Model", "id", None, refers="model")


def test_values_are_converted_and_defaults_fill_in():
    params = (CROP, RATE, MODE, FLAG, NAME, MODEL)
    assert parse_params(params, {}, "x") == {
        "crop": 64,
        "rate": 0.1,
        "mode": "a",
        "flag": True,
        "name": "",
        "model_id": None,
    }
    got = parse_params(
        params,
        {
            "crop": "96",
            "rate": 1,
            "mode": "b",
            "flag": False,
            "name": "  long name ",
            "model_id": "7",
        },
        "x",
    )
    assert got == {
        "crop": 96,
        "rate": 1.0,
        "mode": "b",
        "flag": False,
        "name": "long ",
        "model_id": 7,
    }
    assert parse_params((MODEL,), {"model_id": ""}, "x") == {"model_id": None}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"crop": 100}, "crop must be an integer in [64, 1024] in steps of 32"),
        ({"crop": 2048}, "crop must be an integer"),
        ({"crop": 64.5}, "crop must be an integer"),
        ({"crop": True}, "crop must be an integer"),
        ({"crop": [1]}, "crop must be an integer"),
        ({"crop": "9" * 5000}, "crop must be an integer"),
        ({"rate": float("nan")}, "rate must be a number in [0, 1]"),
        ({"rate": "inf"}, "rate must be a number"),
        ({"rate": -0.1}, "rate must be a number in [0, 1]"),
        ({"mode": "c"}, "mode must be one of a, b"),
        ({"flag": "yes"}, "flag must be true or false"),
        ({"model_id": 0}, "model_id must be the id of a model"),
        ({"model_id": 2**63}, "model_id must be the id of a model"),
        ({"model_id": {"a": 1}}, "model_id must be the id of a model"),
        ({"other": 1}, "unknown x parameters ['other']"),
    ],
)
def test_bad_values_name_the_parameter(raw, message):
    with pytest.raises(ValueError) as info:
        parse_params((CROP, RATE, MODE, FLAG, MODEL), raw, "x")
    assert message in str(info.value)


def test_a_param_or_job_that_cannot_work_is_refused_when_declared():
    with pytest.raises(ValueError, match="kind must be one of"):
        Param("x", "X", "date", None)
    with pytest.raises(ValueError, match="capability must be one of"):
        BatchJob("k", "segment-videos", "K", run="m:f")
    with pytest.raises(ValueError, match="run must be 'module:function'"):
        BatchJob("k", "proposals", "K", run="m.f")


def _module(builder) -> str:
    """Where a builder lives: its "module:function" path until first built, then the function."""
    return builder if isinstance(builder, str) else builder.__module__


def test_the_methods_declare_one_job_per_capability_json_safe():
    # the built-in methods' (a test plugin may be registered too)
    declared = {
        job.kind: (info.name, job.capability)
        for info, job in batch_jobs()
        if _module(_BUILDERS[info.name]).startswith("inference.")
    }
    assert declared == {
        "mis": ("mis", "proposals"),
        "exits": ("exits", "pseudo_masks"),
        "train": ("dynamite", "train"),
        "sam3_text": ("sam3", "text_masks"),
    }
    assert {c for _, c in declared.values()} == set(CAPABILITIES)
    for _, job in batch_jobs():
        d = job.as_dict()
        assert json.loads(json.dumps(d)) == d
        # every default passes its own check
        assert job.parse({}) == {p.name: p.default for p in job.params}


def test_a_job_kind_is_unique_over_the_methods():
    clash = BatchJob("mis", "proposals", "Again", run="m:f")
    with pytest.raises(ValueError, match="batch job kind 'mis' of 'again' is taken"):
        register_method(
            MethodInfo("again", "Again", prompts=("click",), batch=(clash,)), builder="m:f"
        )
    assert "again" not in _BUILDERS and "again" not in _INFOS


def test_an_unlisted_choice_is_accepted_but_not_offered():
    net = Param(
        "net",
        "Net",
        "choice",
        "big",
        choices=(("big", "Big"), ("tiny", "Tiny")),
        unlisted=("tiny",),
    )
    assert net.parse("tiny") == "tiny"
    assert net.as_dict()["choices"] == [["big", "Big"]]


def test_ids_are_a_bounded_list_of_row_ids_each_once_in_order():
    labels = Param("label_ids", "Labels", "ids", (), minimum=1, maximum=3, refers="label")
    assert labels.parse([3, "1", 3, 2]) == [3, 1, 2]
    assert labels.as_dict()["default"] == [] and labels.as_dict()["refers"] == "label"
    for bad in ([], None, [1, 2, 3, 4], [0], [True], [1.5], "1", [[1]], [2**63]):
        with pytest.raises(ValueError, match="label_ids must be a list of 1 to 3 ids of a label"):
            labels.parse(bad)
    assert Param("ids", "Ids", "ids", ()).parse(None) == []
