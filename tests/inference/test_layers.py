"""Layers of the inference library point down only, and its metadata imports no torch.

From the bottom: ``structures``, ``data``, ``imaging``, ``weights``, ``predictor``,
``registry``, ``backbones``; then ``methods`` (one package per method, none importing
another); then ``evaluation`` and ``benchmarks``, which may import anything below them.
Imports are read with ``ast``, inside functions too (lazy imports are still dependencies).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.pyrun import run_python

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "inference"
LOWER = (
    "inference.structures",
    "inference.data",
    "inference.imaging",
    "inference.weights",
    "inference.predictor",
    "inference.registry",
    "inference.backbones",
)
UPPER = ("inference.evaluation", "inference.benchmarks")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, relative imports resolved."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from . import x`
    return found


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _files(*prefixes: str) -> list[Path]:
    return [p for p in sorted(LIBRARY.rglob("*.py")) if _under(_module_name(p), prefixes)]


def test_the_resolver_sees_relative_and_function_level_imports(tmp_path):
    assert _imports(LIBRARY / "methods" / "m2n2" / "predictor.py") >= {
        "inference.imaging",
        "inference.predictor",
    }
    assert "inference.methods.grabcut.predictor" in _imports(
        LIBRARY / "evaluation" / "baselines.py"
    )


def test_nothing_below_evaluation_imports_evaluation_or_benchmarks():
    files = _files(*LOWER, "inference.methods")
    assert len(files) > 40
    for path in files:
        bad = sorted(n for n in _imports(path) if _under(n, UPPER))
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_the_bottom_layers_import_no_method():
    for path in _files(*LOWER):
        bad = sorted(n for n in _imports(path) if _under(n, ("inference.methods",)))
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_no_method_package_imports_another():
    packages = [p.name for p in (LIBRARY / "methods").iterdir() if (p / "__init__.py").exists()]
    assert {"m2n2", "salt", "mis", "dynamite", "exits", "grabcut"} <= set(packages)
    for package in packages:
        own = f"inference.methods.{package}"
        others = tuple(f"inference.methods.{p}" for p in packages if p != package)
        for path in _files(own):
            bad = sorted(n for n in _imports(path) if _under(n, others))
            assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_method_metadata_imports_no_torch():
    code = (
        "import sys, inference\n"
        "infos = inference.method_infos()\n"
        "assert {i.name for i in infos}"
        " >= {'m2n2', 'salt', 'mis', 'dynamite', 'exits', 'opencv-grabcut'}\n"
        "assert inference.method_info('dynamite').trained is not None\n"
        "[i.as_dict() for i in infos]\n"
        "heavy = sorted(m for m in ('torch', 'timm', 'numba', 'scipy', 'cv2')"
        " if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
