"""The registry: metadata beside each builder, lazy builders, plugins, trained-model hooks."""

import numpy as np
import pytest

from inference import (
    Click,
    MethodInfo,
    TrainedWeights,
    build_predictor,
    convert_trained,
    list_methods,
    load_plugins,
    load_trained,
    method_info,
    method_infos,
    register_method,
)
from inference.registry import _BUILDERS


def test_builtin_metadata_keeps_the_platform_s_menu():
    infos = {i.name: i for i in method_infos()}
    assert infos["m2n2"].label == "M2N2 (clicks)" and infos["m2n2"].backbones[:2] == (
        "effnet-lite0",
        "sd2",
    )
    assert (
        infos["salt"].multi_object
        and infos["dynamite"].multi_object
        and not infos["mis"].multi_object
    )
    assert (
        infos["opencv-grabcut"].backbones == ()
        and infos["opencv-grabcut"].label == "GrabCut (baseline)"
    )
    for name in ("salt", "mis", "dynamite"):
        assert infos[name].prompts == ("click", "scribble", "extreme_points"), name
    for name in ("m2n2", "opencv-grabcut"):  # they refine an object's prior mask too
        assert infos[name].prompts == ("click", "scribble", "extreme_points", "mask"), name
    assert (
        infos["exits"].prompts == ("extreme_points", "box") and infos["exits"].trained is not None
    )
    assert [i.name for i in method_infos()] == list_methods()


def test_as_dict_is_json_safe():
    import json

    d = method_info("dynamite").as_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["default_backbone"] == "effnet-lite0" and d["needs_trained_model"] is True
    assert method_info("opencv-grabcut").as_dict()["default_backbone"] is None
    assert set(d) == {
        "name",
        "label",
        "prompts",
        "multi_object",
        "backbones",
        "default_backbone",
        "needs_trained_model",
        "trained",
        "summary",
        "batch",
        "checkpoints",
        "finds_text",
    }
    assert [job["kind"] for job in d["batch"]] == ["train"]
    assert d["checkpoints"] == {}  # DynaMITe's weights are the project's, not the worker's
    sam = method_info("sam").as_dict()
    assert sam["checkpoints"]["vit-b"] == "facebook/sam-vit-base"
    assert d["trained"]["backbones"] == ["swin_tiny", "resnet50", "effnet-lite0"]
    assert ".safetensors" in d["trained"]["suffixes"]


def test_unknown_names_list_the_registered_ones():
    with pytest.raises(KeyError, match="registered: .*m2n2"):
        method_info("nope")
    with pytest.raises(KeyError, match="unknown method 'nope'"):
        build_predictor("nope")
    with pytest.raises(ValueError, match="no trained model"):
        load_trained("m2n2", "x.safetensors", {}, "cpu")
    with pytest.raises(ValueError, match="no trained model"):
        convert_trained("opencv-grabcut", "a", "b", {})


def test_a_decorated_builder_with_metadata():
    info = MethodInfo(
        name="deco-test",
        label="Deco",
        prompts=("click",),
        backbones=("b1", "b2"),
        trained=TrainedWeights("a file", (".bin",), load="x:y", convert="x:z"),
    )

    @register_method(info)
    def build(device="cpu", backbone=None, **kwargs):
        from inference.methods.grabcut import GrabCutPredictor

        return GrabCutPredictor()

    try:
        assert method_info("deco-test") is info and info.as_dict()["default_backbone"] == "b1"
        assert type(build_predictor("deco-test")).__name__ == "GrabCutPredictor"
        with pytest.raises(ValueError, match="twice"):
            register_method(info)(build)
    finally:
        _BUILDERS.pop("deco-test")
    assert "deco-test" not in list_methods() and "deco-test" not in {i.name for i in method_infos()}


def test_a_bare_name_gets_default_metadata():
    register_method("bare-test")(lambda device="cpu", **kw: None)
    try:
        info = method_info("bare-test")
        assert (info.label, info.prompts, info.multi_object, info.trained) == (
            "bare-test",
            ("click",),
            False,
            None,
        )
    finally:
        _BUILDERS.pop("bare-test")


def test_plugins_register_by_import_and_build_lazily():
    load_plugins(["tests.inference.plugin_example.toy"])
    load_plugins(["tests.inference.plugin_example.toy"])  # a second import registers nothing new
    assert method_info("toy-everything").prompts == ("click", "box")
    p = build_predictor("toy-everything", backbone="ignored")
    p.set_image(np.zeros((4, 5, 3), np.uint8))
    assert p.predict([Click(1, 1)]).mask.all()
    assert p.predict_objects([Click(1, 1, object_id=2)])[2].mask.all()


def test_a_builder_path_must_name_module_and_function():
    with pytest.raises(ValueError, match="module:function"):
        register_method(MethodInfo("bad-path", "Bad", ("click",)), builder="just_a_module")


def test_entry_points_of_the_methods_group_load_on_the_first_lookup(monkeypatch):
    import importlib.metadata

    from inference import registry

    loaded = []

    class Entry:
        def load(self):
            loaded.append(True)
            register_method("entry-test")(lambda device="cpu", **kw: None)

    def entry_points(*, group):
        assert group == "maskwright.methods"
        return [Entry()]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    monkeypatch.setattr(registry, "_loaded", False)
    try:
        assert "entry-test" in list_methods() and "entry-test" in list_methods()
        assert loaded == [True]  # once per process
    finally:
        _BUILDERS.pop("entry-test", None)
