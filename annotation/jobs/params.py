"""Job parameters from a launcher's JSON: unknown names refused, values converted, one error.

Torch-free: launch-time validators run in the web process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from annotation.common.exceptions import ApplicationError

T = TypeVar("T")


def parse_params(
    cls: type[T], raw: dict[str, Any], what: str, casts: dict[str, Callable[[Any], Any]]
) -> T:
    """``cls`` (a dataclass of defaults) with the values of ``raw`` converted by ``casts``
    (field → converter; a field missing from ``raw`` keeps its default). A name ``cls`` does
    not have, or a value its converter refuses, is an :class:`ApplicationError` naming it."""
    unknown = set(raw) - set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    if unknown:
        raise ApplicationError(f"unknown {what} parameters {sorted(unknown)}")
    try:
        return cls(**{name: cast(raw[name]) for name, cast in casts.items() if name in raw})
    except (TypeError, ValueError) as exc:
        raise ApplicationError(f"bad {what} parameter: {exc}") from exc


def optional_int(value: Any) -> int | None:
    """An id a form may leave empty: None or "" is None."""
    return int(value) if value not in (None, "") else None


# -- ids in parameters ------------------------------------------------------------------------
# A parameter named ``<something>_<noun>_id`` (or ``_ids``, a list) holds ids of the noun's
# rows, and each must be a row of the job's own project: a launcher of one project must not
# make a worker read or write another tenant's model, label, dataset or image. The app that
# owns a noun's rows registers how to check them (:func:`register_id_param`, from its
# ``AppConfig.ready()``); a name whose noun nobody registered is refused outright, so that a
# new job kind cannot take an id from another project by forgetting to check it.

# (ids, project id) → those of the ids that are rows of the project
RowsInProject = Callable[[set[int], int], set[int]]
ID_PARAMS: dict[str, RowsInProject] = {}


def register_id_param(noun: str, rows_in_project: RowsInProject) -> None:
    """Let job parameters name rows of ``noun`` (``model`` for ``init_model_id``): each id is
    accepted when ``rows_in_project(ids, project_id)`` returns it."""
    ID_PARAMS[noun] = rows_in_project


def project_rows(model: Any, project_field: str = "project_id") -> RowsInProject:
    """The check of a model whose rows reach their project through ``project_field``."""

    def rows_in_project(ids: set[int], project_id: int) -> set[int]:
        return set(
            model.objects.filter(pk__in=ids, **{project_field: project_id}).values_list(
                "pk", flat=True
            )
        )

    return rows_in_project


def _id_values(raw: Any) -> Iterator[tuple[str, Any]]:
    """(name, value) of every ``*_id`` / ``*_ids`` parameter, nested objects included."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            if isinstance(key, str) and key.endswith(("_id", "_ids")):
                yield key, value
            else:
                yield from _id_values(value)
    elif isinstance(raw, list):
        for item in raw:
            yield from _id_values(item)


def _as_id(name: str, value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ApplicationError(f"bad parameter {name}: {value!r} is not an id")
    try:
        return int(value)
    except ValueError:
        raise ApplicationError(f"bad parameter {name}: {value!r} is not an id") from None


def check_ids_in_project(params: dict[str, Any], project_id: int) -> None:
    """Refuse (400, before anything is loaded) a parameter naming a row outside ``project_id``;
    a row of another project reads exactly like one that does not exist."""
    for name, value in _id_values(params):
        noun = name.rsplit("_", 1)[0].rsplit("_", 1)[-1]  # init_model_id → model
        rows_in_project = ID_PARAMS.get(noun)
        if rows_in_project is None:
            raise ApplicationError(f"unknown id parameter {name!r}")
        values = value if name.endswith("_ids") and isinstance(value, list) else [value]
        ids = {i for i in (_as_id(name, v) for v in values) if i is not None}
        found = rows_in_project(ids, project_id)
        if ids - found:
            missing = min(ids - found)
            article = "an" if noun[0] in "aeiou" else "a"
            raise ApplicationError(f"{noun} {missing} is not {article} {noun} of this project")


def in_project(runner: Callable[[Any], T]) -> Callable[[Any], T]:
    """A job runner that first checks, on every run (a redelivered job included), that the
    job's dataset and every id in its parameters belong to the job's project. The launch
    checks the same; this covers rows written past it (an older version, a direct insert)."""

    @functools.wraps(runner)
    def run(ctx: Any) -> T:
        from .models import Job

        project_id, dataset_project_id = (
            Job.objects.filter(pk=ctx.job_id).values_list("project_id", "dataset__project_id").get()
        )
        if dataset_project_id is not None and dataset_project_id != project_id:
            raise ApplicationError(f"dataset {ctx.dataset_id} is not a dataset of this project")
        check_ids_in_project(ctx.params, project_id)
        return runner(ctx)

    return run
