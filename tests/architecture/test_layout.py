"""Guards for the layout: the `platform` trap, and who may import what."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.pyrun import run_python

REPO = Path(__file__).resolve().parents[2]


def test_import_roots_are_not_packages():
    # platform/__init__.py would shadow the standard library module and break torch and uuid.
    for folder in ("platform", "docker", "frontend"):
        assert not (REPO / folder / "__init__.py").exists(), f"{folder}/__init__.py must not exist"


def test_platform_is_the_stdlib_module_and_config_lives_under_platform(settings):
    import platform

    import config

    assert platform.system()  # the stdlib function, inside the configured Django process
    assert Path(platform.__file__).parent != REPO / "platform"
    assert Path(config.__file__).resolve().parent == REPO / "platform" / "config"


def test_platform_works_inside_manage_py_and_torch_imports():
    code = (
        "import platform, config; print(platform.system(), config.__file__);"
        "import torch; print(torch.__version__)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    # Django 5.2's shell first reports its automatic imports; ours are the last two lines.
    system, config_file = out.stdout.strip().splitlines()[-2].split()
    assert out.stdout.strip().splitlines()[-1].startswith("2.")
    assert system == "Linux" and config_file.startswith(str(REPO / "platform" / "config"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_inference_is_a_pure_library():
    forbidden = {"django", "rest_framework", "channels", "celery", "annotation", "config"}
    for path in (REPO / "inference").rglob("*.py"):
        bad = _imports(path) & forbidden
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_only_segmentation_imports_inference_and_torch():
    for path in (REPO / "annotation").rglob("*.py"):
        if "segmentation" in path.relative_to(REPO / "annotation").parts:
            continue
        bad = _imports(path) & {
            "inference",
            "torch",
            "torchvision",
            "timm",
            "diffusers",
            "transformers",
        }
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


# What the web process may load of ``inference``: the methods' metadata (their batch jobs
# register as job kinds at start-up), never a predictor, a backbone or an evaluation.
METADATA = re.compile(
    r"inference(\.(jobs|registry|structures|predictor|methods(\._lazy|\.[a-z0-9_]+(\.variants)?)?))?"
)


def test_the_web_process_never_loads_torch():
    code = (
        "import sys, django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings.test';"
        "import config.asgi; from config.urls import urlpatterns;"
        "import annotation.api.urls, annotation.jobs.tasks;"
        "from annotation.jobs.tasks import job_run;"
        " assert job_run.app.main == 'maskwright', job_run.app;"
        "print('torch' in sys.modules, *[m for m in sys.modules if m.startswith('inference')])"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    torch_loaded, *loaded = out.stdout.split()
    assert torch_loaded == "False"
    beyond = [m for m in loaded if not METADATA.fullmatch(m)]
    assert not beyond, f"the web process loads more of inference than metadata: {beyond}"
