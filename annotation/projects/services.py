"""Writes for projects: the project itself, its members and its label classes."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, ProtectedError

from annotation.common.exceptions import ApplicationError, Forbidden
from annotation.users.services import account_quota_take, user_create

from .models import LabelClass, Membership, Project, Role


def project_create(*, name: str, description: str = "", owner: Any) -> Project:
    name = name.strip()
    if not name:
        raise ApplicationError("a project needs a name")
    with transaction.atomic():
        project = Project.objects.create(name=name[:200], description=description, created_by=owner)
        Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    return project


def project_update(*, project: Project, changes: dict[str, Any]) -> Project:
    if "name" in changes:
        if not str(changes["name"]).strip():
            raise ApplicationError("a project needs a name")
        project.name = str(changes["name"]).strip()[:200]
    if "description" in changes:
        project.description = str(changes["description"])
    project.save()
    return project


def project_delete(*, project: Project) -> None:
    from annotation.datasets.services import dataset_delete  # keeps files in step with rows

    for dataset in project.datasets.all():
        dataset_delete(dataset=dataset)
    project.delete()


def membership_set(
    *, project: Project, username: str, role: str, by: Role | None = None
) -> Membership:
    """Add a user to the project or change their role. ``by``: the role of the member asking
    (None for the system, e.g. a script): only an owner grants ownership or changes an owner's
    role; managers manage the other members."""
    if role not in Role.values:
        raise ApplicationError(f"unknown role {role!r} (owner, manager, annotator, reviewer)")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ApplicationError(f"no user named {username!r}")
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update().filter(project=project, user=user).first()
        )
        if role == Role.OWNER or (membership is not None and membership.role == Role.OWNER):
            _require_owner(by, "grant or change the owner role")
        if membership is None:
            return Membership.objects.create(project=project, user=user, role=role)
        if membership.role == Role.OWNER and role != Role.OWNER:
            _keep_an_owner(project, membership)
        membership.role = role
        membership.save()
    return membership


def member_account_create(
    *, project: Project, username: str, password: str, role: str, by: Role | None, by_user: Any
) -> Membership:
    """Create an account and add it to the project with ``role``, all or nothing: a role the
    asker may not grant (a manager granting owner) or a weak password leaves no account
    behind. ``by``/``by_user``: the asker's role and account (the account is rate limited)."""
    if role not in Role.values:
        raise ApplicationError(f"unknown role {role!r} (owner, manager, annotator, reviewer)")
    if role == Role.OWNER:
        _require_owner(by, "grant or change the owner role")
    with transaction.atomic():
        user = user_create(username=username, password=password)
        account_quota_take(by=by_user)
        return Membership.objects.create(project=project, user=user, role=role)


def _require_owner(by: Role | None, action: str) -> None:
    # A manager who could make themself owner could then demote or remove the owners: the
    # project would change hands without its owners' say.
    if by is not None and by != Role.OWNER:
        raise Forbidden(f"only an owner can {action}")


def _keep_an_owner(project: Project, leaving: Membership) -> None:
    # The owners' rows are locked: two owners demoting each other at once must not both pass.
    owners = list(
        Membership.objects.select_for_update()
        .filter(project=project, role=Role.OWNER)
        .exclude(pk=leaving.pk)
        .values_list("pk", flat=True)
    )
    if not owners:
        raise ApplicationError("a project must keep at least one owner")


def membership_remove(*, membership: Membership, by: Role | None = None) -> None:
    """Remove a member; ``by`` as in :func:`membership_set` (only an owner removes an owner)."""
    with transaction.atomic():
        if membership.role == Role.OWNER:
            _require_owner(by, "remove an owner")
            _keep_an_owner(membership.project, membership)
        membership.delete()


def label_create(*, project: Project, name: str, color: str) -> LabelClass:
    with transaction.atomic():
        top = LabelClass.objects.filter(project=project).aggregate(m=Max("position"))["m"]
        label = LabelClass(
            project=project,
            name=name.strip(),
            color=color,
            position=(top + 1) if top is not None else 0,
        )
        _validate(label)
        label.save()
    return label


def _validate(label: LabelClass) -> None:
    try:
        label.full_clean()
    except ValidationError as exc:
        raise ApplicationError("invalid label", extra=exc.message_dict) from exc


def label_update(*, label: LabelClass, changes: dict[str, Any]) -> LabelClass:
    if "name" in changes:
        label.name = str(changes["name"]).strip()
    if "color" in changes:
        label.color = str(changes["color"])
    _validate(label)
    label.save()
    return label


def label_reorder(*, project: Project, label_ids: list[int]) -> list[LabelClass]:
    """Set the order of all labels; ``label_ids`` must list each label of the project once."""
    labels = {lc.id: lc for lc in LabelClass.objects.filter(project=project)}
    if sorted(label_ids) != sorted(labels):
        raise ApplicationError("give every label id of the project exactly once")
    with transaction.atomic():
        for position, label_id in enumerate(label_ids):
            labels[label_id].position = position
        LabelClass.objects.bulk_update(labels.values(), ["position"])
    return [labels[i] for i in label_ids]


def label_delete(*, label: LabelClass) -> None:
    try:
        label.delete()
    except ProtectedError as exc:
        count = label.instances.count()
        raise ApplicationError(
            f"label {label.name!r} is used by {count} masks; relabel or delete them first"
        ) from exc
