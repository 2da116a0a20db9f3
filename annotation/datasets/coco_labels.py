"""Which project label each COCO category's annotations get: the admin's category map.

The upload form first reads the categories (``coco_preview``), then sends a map with the
upload: ``{"<category id>": "new" | "drop" | <label id>}``. A category the map leaves out is
``"new"``: a label of the category's name, reused if the project has one, created otherwise.
``"drop"`` imports none of the category's annotations (they are counted in the report). A label
id must be a label of the dataset's project.

Everything here is checked before an image is stored, so a bad map changes nothing; labels are
created only inside the import's transaction, and only for categories with something to import
(a COCO file listing 80 categories for 3 used ones adds 3 labels, not 80).
"""

from __future__ import annotations

import json
from typing import Any

from annotation.common.apis import BIGINT_MAX
from annotation.common.exceptions import ApplicationError
from annotation.projects.models import LabelClass, Project

from .coco_import import CocoError, CocoPlan

NEW = "new"
DROP = "drop"
MAX_MAP_ENTRIES = 5000  # far above any real category list (COCO has 80, LVIS 1203)
MAX_MAP_CHARS = 200_000
# Distinct colours for labels created on import (the tab10 palette).
PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]

# A category's choice once checked: NEW, DROP, or the project label it maps to.
Choice = str | LabelClass


def _bad(message: str) -> ApplicationError:
    return ApplicationError(f"category_map: {message}", extra={"field": "category_map"})


def parse_category_map(raw: Any) -> dict[int, str | int]:
    """The map as sent (a JSON object, or its text from a form field), checked for shape only.

    Returns ``{category id: "new" | "drop" | label id}``. Raises :class:`ApplicationError`
    (400) naming the first bad entry.
    """
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        if len(raw) > MAX_MAP_CHARS:
            raise _bad(f"longer than {MAX_MAP_CHARS:,} characters")
        try:
            raw = json.loads(raw)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise _bad(f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise _bad('must be an object {"<category id>": "new" | "drop" | <label id>}')
    if len(raw) > MAX_MAP_ENTRIES:
        raise _bad(f"{len(raw)} entries; at most {MAX_MAP_ENTRIES} are read")
    out: dict[int, str | int] = {}
    for key, value in raw.items():
        try:
            cat_id = int(key)
        except (TypeError, ValueError):
            raise _bad(f"key {key!r} is not a category id") from None
        if abs(cat_id) > BIGINT_MAX:
            raise _bad(f"key {key!r} is out of range")
        is_label_id = isinstance(value, int) and not isinstance(value, bool)
        if not (value in (NEW, DROP) or (is_label_id and 0 < value <= BIGINT_MAX)):
            raise _bad(f'category {key}: {value!r} is not "new", "drop" or a label id')
        out[cat_id] = value
    return out


def check_category_map(
    plan: CocoPlan, category_map: dict[int, str | int], project: Project
) -> dict[int, Choice]:
    """Every category of ``plan`` with its choice; label ids resolved to the project's rows.

    Raises :class:`CocoError` for a category the file does not have and
    :class:`ApplicationError` for a label id that is not one of ``project``'s labels (both 400).
    """
    unknown = sorted(c for c in category_map if c not in plan.categories)
    if unknown:
        raise CocoError(
            f"category_map names categor{'y' if len(unknown) == 1 else 'ies'} "
            f"{', '.join(map(str, unknown[:20]))} that the COCO json does not have",
            extra={"field": "category_map"},
        )
    wanted = {v for v in category_map.values() if isinstance(v, int)}
    labels = {lc.id: lc for lc in LabelClass.objects.filter(project=project, id__in=wanted)}
    missing = sorted(wanted - set(labels))
    if missing:
        raise _bad(
            f"label{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing[:20]))} "
            f"{'are' if len(missing) > 1 else 'is'} not a label of project {project.id}"
        )
    choices: dict[int, Choice] = {}
    for cat_id in plan.categories:
        value = category_map.get(cat_id, NEW)
        choices[cat_id] = labels[value] if isinstance(value, int) else value
    return choices


def resolve_labels(
    project: Project, plan: CocoPlan, choices: dict[int, Choice], used: set[int]
) -> tuple[dict[int, LabelClass | None], list[str]]:
    """The label of each used category (None: dropped) and the names of labels created.

    Call inside the import's transaction. New labels are appended in COCO id order.
    """
    existing = {lc.name: lc for lc in LabelClass.objects.filter(project=project)}
    position = max((lc.position for lc in existing.values()), default=-1) + 1
    by_cat: dict[int, LabelClass | None] = {}
    created: list[str] = []
    for cat_id in sorted(used):
        choice = choices.get(cat_id, NEW)
        if isinstance(choice, LabelClass):
            by_cat[cat_id] = choice
        elif choice == DROP:
            by_cat[cat_id] = None
        else:
            name = plan.categories[cat_id]
            if name not in existing:
                # get_or_create: an upload running beside this one may have just made it
                existing[name], made = LabelClass.objects.get_or_create(
                    project=project,
                    name=name,
                    defaults={"color": PALETTE[position % len(PALETTE)], "position": position},
                )
                if made:
                    created.append(name)
                    position += 1
            by_cat[cat_id] = existing[name]
    return by_cat, created


def category_preview(plan: CocoPlan, project: Project) -> dict[str, Any]:
    """What the upload form shows before the upload: each category with its annotation count
    and the project label of the same name (the default for "new"), and the project's labels."""
    counts: dict[int, int] = dict.fromkeys(plan.categories, 0)
    for _, cat_id, _, _ in plan.annotations:
        counts[cat_id] += 1
    labels = list(LabelClass.objects.filter(project=project).values("id", "name", "color"))
    by_name = {lc["name"]: lc["id"] for lc in labels}
    return {
        "source": plan.source,
        "images": len(plan.images),
        "annotations": len(plan.annotations),
        "crowd_skipped": plan.crowd_skipped,
        "categories": [
            {
                "id": cat_id,
                "name": name,
                "annotations": counts[cat_id],
                "label": by_name.get(name),
            }
            for cat_id, name in sorted(plan.categories.items())
        ],
        "labels": labels,
    }
