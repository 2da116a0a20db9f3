"""Which role may change what on the annotation canvas: one table, read by the REST views
(``apis.py``) and the annotation socket's services (``live.py``) alike, so that a role refused
over one door is refused over the other.

Seeing (opening an image, reading masks and prompts) follows ``projects.access``: reviewers
see every image, annotators their tasks' images. This module only answers who may write.
"""

from __future__ import annotations

from typing import Any

from annotation.common.exceptions import Forbidden
from annotation.projects.access import a_role
from annotation.projects.models import ADMIN_ROLES, Role

from .models import Task

EDITORS = ADMIN_ROLES | {Role.ANNOTATOR}
REVIEWERS = ADMIN_ROLES | {Role.REVIEWER}

# Actions, named as the 403 message says them.
CREATE_MASKS = "create masks"
EDIT_MASKS = "edit masks"
DELETE_MASKS = "delete masks"
ADD_PROMPTS = "add prompts"
UNDO_PROMPTS = "undo prompts"
REDO_PROMPTS = "redo prompts"
REVIEW_MASKS = "review masks"
MARK_DONE = "mark images done"  # an annotator finished an image of their task

ALLOWED: dict[str, frozenset[Role]] = {
    CREATE_MASKS: EDITORS,
    EDIT_MASKS: EDITORS,
    DELETE_MASKS: EDITORS,
    ADD_PROMPTS: EDITORS,
    UNDO_PROMPTS: EDITORS,
    REDO_PROMPTS: EDITORS,
    REVIEW_MASKS: REVIEWERS,
    MARK_DONE: EDITORS,
}

# What each non-admin role may set a task's state to (admins may change anything on a task).
TASK_STATE_MOVES: dict[Role, frozenset[str]] = {
    Role.ANNOTATOR: frozenset({Task.State.IN_PROGRESS, Task.State.SUBMITTED}),
    Role.REVIEWER: frozenset({Task.State.REVIEWED, Task.State.IN_PROGRESS}),
}


def require(role: Role, action: str) -> None:
    """403 unless ``role`` may do ``action`` (one of the names above)."""
    if role not in ALLOWED[action]:
        raise Forbidden(f"{a_role(role)} cannot {action}")


def require_task_change(role: Role, changes: dict[str, Any]) -> None:
    """403 unless ``role`` may make ``changes`` (name, assignee_id, state, image_ids) to a task."""
    if role in ADMIN_ROLES:
        return
    if set(changes) - {"state"}:
        raise Forbidden(f"{a_role(role)} can only change a task's state")
    if "state" in changes and changes["state"] not in TASK_STATE_MOVES.get(role, frozenset()):
        raise Forbidden(f"{a_role(role)} cannot set a task to {changes['state']}")
