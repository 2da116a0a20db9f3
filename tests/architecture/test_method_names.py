"""The platform knows methods only by what they register (``inference.register_method``): no
method's name appears in ``annotation/`` code outside migrations — not as a string, an
identifier, an import or a module name (prose in docstrings is fine).

``NOT_YET`` lists modules allowed to name a method, each with why (none today).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOKEN = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")

# module → why it still names a method; empty since the batch jobs became capabilities that
# methods declare (``inference.jobs``). Keep it so: a new entry needs a reason here.
NOT_YET: dict[str, str] = {}


def _method_names() -> set[str]:
    import inference

    return {name.lower() for name in inference.list_methods()}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and node.body
        ):
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _texts(tree: ast.AST):
    """Every string literal (docstrings excepted) and every name the code uses or defines."""
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node.value
        elif isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.Attribute):
            yield node.attr
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.alias)):
            yield node.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def names_in(path: Path, names: set[str]) -> set[str]:
    found = {path.stem.lower()} & names
    for text in _texts(ast.parse(path.read_text(), filename=str(path))):
        found |= {
            tok.lower() for tok in TOKEN.findall(text.replace("_", " ").replace(".", " "))
        } & names
    return found


def _modules() -> list[Path]:
    return [p for p in sorted((REPO / "annotation").rglob("*.py")) if "migrations" not in p.parts]


def test_the_checker_sees_strings_identifiers_and_module_names(tmp_path):
    sample = tmp_path / "m2n2.py"
    sample.write_text('"""M2N2 in prose is fine."""\nx = "salt/effnet"\ndef run_dynamite(): ...\n')
    assert names_in(sample, {"m2n2", "salt", "dynamite", "exits"}) == {"m2n2", "salt", "dynamite"}


def test_no_method_name_in_the_platform():
    names = _method_names()
    found = {str(p.relative_to(REPO)): sorted(names_in(p, names)) for p in _modules()}
    found = {k: v for k, v in found.items() if v}
    unexpected = {k: v for k, v in found.items() if k not in NOT_YET}
    assert not unexpected, (
        f"method names in platform code (use the registered metadata): {unexpected}"
    )
    cleaned = sorted(set(NOT_YET) - set(found))
    assert not cleaned, f"these no longer name a method: remove them from NOT_YET: {cleaned}"
