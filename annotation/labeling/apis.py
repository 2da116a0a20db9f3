"""Masks (instances), their prompt log, and tasks."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.common.apis import validated
from annotation.common.exceptions import ApplicationError, Forbidden
from annotation.common.pagination import DefaultPagination
from annotation.datasets.models import Dataset
from annotation.datasets.selectors import image_for
from annotation.projects.access import ADMIN_ROLES, project_for, require_admin
from annotation.projects.models import Role

from . import selectors, services
from .models import Instance, Prompt, ReviewState, Source, Task

EDITORS = ADMIN_ROLES | {Role.ANNOTATOR}
REVIEWERS = ADMIN_ROLES | {Role.REVIEWER}


def _require(role: Role, allowed: frozenset[Role] | set[Role], action: str) -> None:
    if role not in allowed:
        raise Forbidden(f"a {role.value} cannot {action}")


class InstanceOut(serializers.ModelSerializer):
    class Meta:
        model = Instance
        fields = [
            "id", "image", "label", "mask", "bbox", "area", "source", "model_name",
            "model_version", "score", "author", "review_state", "z_order", "version",
            "created_at", "updated_at",
        ]


class InstanceIn(serializers.Serializer):
    mask = serializers.JSONField(help_text="COCO segmentation: RLE (compressed or not) or polygons")
    label_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    source = serializers.ChoiceField(choices=Source.choices, default=Source.MANUAL)
    model_name = serializers.CharField(required=False, allow_blank=True, default="")
    model_version = serializers.CharField(required=False, allow_blank=True, default="")
    score = serializers.FloatField(required=False, allow_null=True, default=None)


class InstancePatch(serializers.Serializer):
    version = serializers.IntegerField(help_text="the version you edited; a stale one gets 409")
    mask = serializers.JSONField(required=False)
    label_id = serializers.IntegerField(required=False, allow_null=True)
    review_state = serializers.ChoiceField(choices=ReviewState.choices, required=False)
    z_order = serializers.IntegerField(required=False)
    score = serializers.FloatField(required=False, allow_null=True)


class ImageInstancesApi(APIView):
    @extend_schema(responses=InstanceOut(many=True))
    def get(self, request, image_id: int):
        image_for(request.user, image_id)
        paginator = DefaultPagination()
        page = paginator.paginate_queryset(selectors.instance_rows_for_image(image_id), request, view=self)
        return paginator.get_paginated_response([selectors.instance_row_out(row) for row in page])

    @extend_schema(request=InstanceIn, responses={201: InstanceOut})
    def post(self, request, image_id: int):
        image, role = image_for(request.user, image_id)
        _require(role, EDITORS, "create masks")
        instance = services.instance_create(image=image, author=request.user, **validated(InstanceIn, request.data))
        return Response(InstanceOut(instance).data, status=201)


class InstanceDetailApi(APIView):
    @extend_schema(responses=InstanceOut)
    def get(self, request, instance_id: int):
        instance, _ = selectors.instance_for(request.user, instance_id)
        return Response(InstanceOut(instance).data)

    @extend_schema(request=InstancePatch, responses={200: InstanceOut, 409: None})
    def patch(self, request, instance_id: int):
        _, role = selectors.instance_for(request.user, instance_id)
        data = validated(InstancePatch, request.data)
        version = data.pop("version")
        if set(data) - {"review_state"}:
            _require(role, EDITORS, "edit masks")
        if "review_state" in data:
            _require(role, REVIEWERS, "review masks")
        instance = services.instance_update(
            instance_id=instance_id, expected_version=version, changes=data, author=request.user
        )
        return Response(InstanceOut(instance).data)

    @extend_schema(responses={204: None, 409: None})
    def delete(self, request, instance_id: int):
        instance, role = selectors.instance_for(request.user, instance_id)
        _require(role, EDITORS, "delete masks")
        raw = request.query_params.get("version")
        if raw is not None and not raw.isdigit():
            raise ApplicationError("version must be an integer")
        services.instance_delete(instance=instance, expected_version=int(raw) if raw else None)
        return Response(status=204)


class PromptOut(serializers.ModelSerializer):
    class Meta:
        model = Prompt
        fields = ["id", "seq", "kind", "payload", "method", "author", "undone", "created_at"]


class PromptIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Prompt.Kind.choices)
    payload = serializers.JSONField()
    method = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)


class PromptListApi(APIView):
    @extend_schema(responses=PromptOut(many=True))
    def get(self, request, instance_id: int):
        instance, _ = selectors.instance_for(request.user, instance_id)
        return Response(PromptOut(selectors.prompt_list(instance), many=True).data)

    @extend_schema(request=PromptIn, responses={201: PromptOut})
    def post(self, request, instance_id: int):
        instance, role = selectors.instance_for(request.user, instance_id)
        _require(role, EDITORS, "add prompts")
        prompt = services.prompt_append(instance=instance, author=request.user, **validated(PromptIn, request.data))
        return Response(PromptOut(prompt).data, status=201)


class PromptUndoApi(APIView):
    action = "undo"

    @extend_schema(request=None, responses={200: PromptOut})
    def post(self, request, instance_id: int):
        instance, role = selectors.instance_for(request.user, instance_id)
        _require(role, EDITORS, f"{self.action} prompts")
        fn = services.prompt_undo if self.action == "undo" else services.prompt_redo
        prompt = fn(instance=instance)
        if prompt is None:
            raise ApplicationError(f"nothing to {self.action}")
        return Response(PromptOut(prompt).data)


class PromptRedoApi(PromptUndoApi):
    action = "redo"


class TaskOut(serializers.ModelSerializer):
    image_ids = serializers.SerializerMethodField()
    assignee_username = serializers.CharField(source="assignee.username", default=None, read_only=True)
    # Set by ``selectors.task_list`` (absent on a single task, where they read as null).
    images_total = serializers.IntegerField(read_only=True, default=None)
    images_done = serializers.IntegerField(read_only=True, default=None)

    class Meta:
        model = Task
        fields = [
            "id", "project", "dataset", "name", "assignee", "assignee_username", "state", "image_ids",
            "images_total", "images_done", "created_at",
        ]

    def get_image_ids(self, obj: Task) -> list[int]:
        return sorted(img.id for img in obj.images.all())


class TaskIn(serializers.Serializer):
    dataset_id = serializers.IntegerField()
    name = serializers.CharField(max_length=200)
    assignee_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    image_ids = serializers.ListField(child=serializers.IntegerField(), allow_empty=True)


class TaskPatch(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    assignee_id = serializers.IntegerField(required=False, allow_null=True)
    state = serializers.ChoiceField(choices=Task.State.choices, required=False)
    image_ids = serializers.ListField(child=serializers.IntegerField(), required=False)


class TaskListApi(APIView):
    @extend_schema(responses=TaskOut(many=True))
    def get(self, request, project_id: int):
        _, role = project_for(request.user, project_id)
        tasks = selectors.task_list(request.user, project_id, role).prefetch_related("images")
        return Response(TaskOut(tasks, many=True).data)

    @extend_schema(request=TaskIn, responses={201: TaskOut})
    def post(self, request, project_id: int):
        project, _ = require_admin(request.user, project_id, "create tasks")
        data = validated(TaskIn, request.data)
        dataset = Dataset.objects.filter(pk=data.pop("dataset_id"), project=project).first()
        if dataset is None:
            raise ApplicationError("dataset_id is not a dataset of this project")
        task = services.task_create(project=project, dataset=dataset, **data)
        return Response(TaskOut(task).data, status=201)


# What each non-admin role may set a task's state to (admins may set any state).
_STATE_MOVES = {
    Role.ANNOTATOR: {Task.State.IN_PROGRESS, Task.State.SUBMITTED},
    Role.REVIEWER: {Task.State.REVIEWED, Task.State.IN_PROGRESS},
}


class TaskDetailApi(APIView):
    @extend_schema(responses=TaskOut)
    def get(self, request, task_id: int):
        task, _ = selectors.task_for(request.user, task_id)
        return Response(TaskOut(task).data)

    @extend_schema(request=TaskPatch, responses=TaskOut)
    def patch(self, request, task_id: int):
        task, role = selectors.task_for(request.user, task_id)
        data = validated(TaskPatch, request.data)
        if role not in ADMIN_ROLES:
            if set(data) - {"state"}:
                raise Forbidden(f"a {role.value} can only change a task's state")
            if "state" in data and data["state"] not in _STATE_MOVES.get(role, set()):
                raise Forbidden(f"a {role.value} cannot set a task to {data['state']}")
        task = services.task_update(task=task, changes=data)
        return Response(TaskOut(task).data)

    @extend_schema(responses={204: None})
    def delete(self, request, task_id: int):
        task, _ = selectors.task_for(request.user, task_id)
        require_admin(request.user, task.project_id, "delete tasks")
        services.task_delete(task=task)
        return Response(status=204)

