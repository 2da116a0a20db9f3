"""Who may see and do what in a project.

The rules, in one place:

* A user who is not a member of a project gets 404 for everything in it (its existence is not
  revealed).
* Owners and managers administer: upload, launch jobs, export, manage labels, tasks and members
  (creating accounts for new members too).
* Reviewers see every image and mask and set review states.
* Annotators see only the images of open tasks assigned to them, and edit masks there; a task
  an owner or manager closed gives its images back (its record and counts stay).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from annotation.common.exceptions import Forbidden, NotFound

from .models import ADMIN_ROLES, SEE_ALL_ROLES, Membership, Project, Role


def role_of(user: Any, project_id: int) -> Role | None:
    if not user.is_authenticated:
        return None
    role = (
        Membership.objects.filter(project_id=project_id, user_id=user.id)
        .values_list("role", flat=True)
        .first()
    )
    return Role(role) if role else None


def project_for(user: Any, project_id: int) -> tuple[Project, Role]:
    """The project and the user's role in it; 404 for non-members and unknown ids."""
    role = role_of(user, project_id)
    if role is None:
        raise NotFound(f"project {project_id} not found")
    return Project.objects.get(pk=project_id), role


def require_role(
    user: Any, project_id: int, allowed: frozenset[Role] | set[Role], action: str
) -> tuple[Project, Role]:
    """404 for non-members, 403 for members whose role may not do ``action``."""
    project, role = project_for(user, project_id)
    _check_allowed(role, allowed, action)
    return project, role


def role_for_object(
    user: Any,
    project_id: int,
    not_found: str,
    allowed: frozenset[Role] | set[Role] | None = None,
    action: str = "",
) -> Role:
    """The user's role in the project that holds an object (a job, a dataset, a model…).

    Non-members get 404 with ``not_found``, the object's own message, so that neither the
    object nor its project is revealed; with ``allowed``, other roles get 403 for ``action``.
    """
    role = role_of(user, project_id)
    if role is None:
        raise NotFound(not_found)
    if allowed is not None:
        _check_allowed(role, allowed, action)
    return role


def a_role(role: Role) -> str:
    """The role with its article, as messages say it: "an annotator", "a reviewer"."""
    return f"{'an' if role.value[0] in 'aeiou' else 'a'} {role.value}"


def _check_allowed(role: Role, allowed: frozenset[Role] | set[Role], action: str) -> None:
    if role not in allowed:
        raise Forbidden(f"{a_role(role)} cannot {action} in this project")


def require_admin(user: Any, project_id: int, action: str) -> tuple[Project, Role]:
    return require_role(user, project_id, ADMIN_ROLES, action)


def sees_all_images(role: Role) -> bool:
    return role in SEE_ALL_ROLES


# The states of ``labeling.models.Task`` but ``closed``, named here because projects sits below
# labeling in the dependency order (tests/annotation/projects/test_access_states.py checks
# they agree). Listed rather than excluded: ``~Q`` on a many-valued relation would test "no
# closed task at all", not "this task is not closed".
OPEN_TASK_STATES = ("todo", "in_progress", "submitted", "reviewed")


def open_task_images(user: Any, prefix: str = "") -> Q:
    """The images of the open tasks assigned to ``user``: one Q, so that both conditions hold
    for the same task (an image in one of the user's closed tasks and in someone else's open
    task is not the user's)."""
    return Q(
        **{f"{prefix}tasks__assignee_id": user.id, f"{prefix}tasks__state__in": OPEN_TASK_STATES}
    )


def restrict_images(qs: QuerySet, user: Any, role: Role, prefix: str = "") -> QuerySet:
    """Limit an image (or image-related) queryset to what ``user`` may see with ``role``.

    ``prefix`` is the lookup path from the queryset's model to the image (``"image__"`` for
    instances).
    """
    if sees_all_images(role):
        return qs
    return qs.filter(open_task_images(user, prefix)).distinct()
