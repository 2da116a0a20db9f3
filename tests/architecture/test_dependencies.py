"""Who may import whom, read from the source (``ast``): imports inside functions count too, since
they run as soon as the function does.

* ``annotation.jobs`` is the engine every app's job kinds plug into; it knows no other app
  (kinds and the ids their parameters may name register from the apps that own them).
* Nothing imports the Django project package ``config``: it loads the apps, not the reverse.
* No import cycle among the modules of ``annotation``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.pyrun import run_python

REPO = Path(__file__).resolve().parents[2]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every import in the file, at any depth, relative ones resolved.
    ``from a.b import c`` yields ``a.b`` and ``a.b.c`` (``c`` may be a module)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            yield node.lineno, source
            for alias in node.names:
                yield node.lineno, f"{source}.{alias.name}"


def _sources(*roots: str, migrations: bool = True) -> Iterator[Path]:
    for root in roots:
        for path in sorted((REPO / root).rglob("*.py")):
            if migrations or "migrations" not in path.parts:
                yield path


def _report(found: set[tuple[Path, int, str]]) -> str:
    """One line per import statement: ``from a.b import c`` reads as ``a.b``, not also ``a.b.c``."""
    kept = sorted(
        (path, line, name)
        for path, line, name in found
        if not any(
            p == path and n == line and name.startswith(f"{other}.") for p, n, other in found
        )
    )
    return "\n".join(f"{path.relative_to(REPO)}:{line} imports {name}" for path, line, name in kept)


def test_jobs_imports_no_other_app():
    def other_app(name: str) -> bool:
        app = ".".join(name.split(".")[:2])  # annotation.<app>
        return name.startswith("annotation.") and app not in (
            "annotation.jobs",
            "annotation.common",
        )

    bad = {
        (path, line, name)
        for path in _sources("annotation/jobs")
        for line, name in _imported(path)
        if other_app(name)
    }
    assert not bad, "annotation.jobs may import only annotation.common:\n" + _report(bad)


def test_nothing_imports_the_django_project_package():
    bad = {
        (path, line, name)
        for path in _sources("annotation", "inference")
        for line, name in _imported(path)
        if name == "config" or name.startswith("config.")
    }
    assert not bad, (
        "the Django project (config) is loaded by Django, never imported; the Celery "
        "app is celery.current_app:\n" + _report(bad)
    )


def _module_graph() -> dict[str, set[str]]:
    """module → the modules of ``annotation`` it imports (migrations left out)."""
    paths = {_module_name(p): p for p in _sources("annotation", migrations=False)}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        targets = set()
        for _, name in _imported(path):
            while name and name not in paths:  # a.b.Class → a.b
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path a → … → a) per strongly connected component of more than one
    module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return [_a_cycle(graph, component) for component in components]


def _a_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """The shortest path from the component's first module back to itself (breadth first)."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    for node in queue:
        for child in sorted(graph[node] & component):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]


def test_no_import_cycle_in_annotation():
    cycles = _cycles(_module_graph())
    assert not cycles, "import cycles (function-level imports included):\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles
    )


def test_every_job_kind_registers_when_django_loads():
    """The web process knows every kind (launch checks, queues) without importing a runner
    module itself: each app registers its kinds in ``AppConfig.ready()``, as Celery workers do."""
    code = (
        "import django; django.setup();"
        "from annotation.jobs.engine import RUNNERS; from annotation.jobs.models import Job;"
        "print(sorted(set(Job.Kind.values) - set(RUNNERS)), sorted(RUNNERS))"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    # the platform's own kinds, and those the segmentation app registers
    assert out.stdout.strip().splitlines()[-1] == (
        "[] ['attach', 'exits', 'export', 'mis', 'model_import', 'sam3_text', 'train', 'verify']"
    ), f"kinds without a runner, then every registered kind: {out.stdout}"
