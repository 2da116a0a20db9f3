"""Masks (instances), their prompt log, and tasks."""

from __future__ import annotations

from typing import ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.common.apis import id_field, int_field, validated
from annotation.common.exceptions import ApplicationError
from annotation.common.pagination import DefaultPagination
from annotation.datasets.models import Dataset
from annotation.datasets.selectors import image_for
from annotation.projects.access import project_for, require_admin

from . import assignments, permissions, selectors, services
from .models import Instance, Prompt, ReviewState, Source, Task


class InstanceOut(serializers.ModelSerializer):
    class Meta:
        model = Instance
        fields: ClassVar[list[str]] = [
            "id",
            "image",
            "label",
            "mask",
            "bbox",
            "area",
            "source",
            "model_name",
            "model_version",
            "score",
            "author",
            "review_state",
            "z_order",
            "version",
            "created_at",
            "updated_at",
        ]


class InstanceIn(serializers.Serializer):
    mask = serializers.JSONField(help_text="COCO segmentation: RLE (compressed or not) or polygons")
    label_id = id_field(required=False, allow_null=True, default=None)
    source = serializers.CharField(
        default=Source.MANUAL,
        max_length=services.SOURCE_MAX,
        help_text="manual, import, or the name of the registered method that made the mask",
    )
    pseudo = serializers.BooleanField(
        default=False,
        help_text="a method's proposal: starts pending in the review queue",
    )
    model_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    model_version = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=100
    )
    score = serializers.FloatField(required=False, allow_null=True, default=None)


class InstancePatch(serializers.Serializer):
    version = int_field(min_value=0, help_text="the version you edited; a stale one gets 409")
    mask = serializers.JSONField(required=False)
    label_id = id_field(required=False, allow_null=True)
    review_state = serializers.ChoiceField(choices=ReviewState.choices, required=False)
    z_order = int_field(required=False)
    score = serializers.FloatField(required=False, allow_null=True)


class ImageInstancesApi(APIView):
    @extend_schema(responses=InstanceOut(many=True))
    def get(self, request, image_id: int):
        image_for(request.user, image_id)
        paginator = DefaultPagination()
        page = paginator.paginate_queryset(
            selectors.instance_rows_for_image(image_id), request, view=self
        )
        return paginator.get_paginated_response([selectors.instance_row_out(row) for row in page])

    @extend_schema(request=InstanceIn, responses={201: InstanceOut})
    def post(self, request, image_id: int):
        image, role = image_for(request.user, image_id)
        permissions.require(role, permissions.CREATE_MASKS)
        instance = services.instance_create(
            image=image, author=request.user, **validated(InstanceIn, request.data)
        )
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
            permissions.require(role, permissions.EDIT_MASKS)
        if "review_state" in data:
            permissions.require(role, permissions.REVIEW_MASKS)
        instance = services.instance_update(
            instance_id=instance_id, expected_version=version, changes=data, author=request.user
        )
        return Response(InstanceOut(instance).data)

    @extend_schema(responses={204: None, 409: None})
    def delete(self, request, instance_id: int):
        instance, role = selectors.instance_for(request.user, instance_id)
        permissions.require(role, permissions.DELETE_MASKS)
        raw = request.query_params.get("version")
        # ASCII digits only: str.isdigit() also passes "²", which int() then rejects (a 500).
        if raw is not None and not (raw.isascii() and raw.isdigit() and len(raw) <= 10):
            raise ApplicationError("version must be an integer")
        services.instance_delete(instance=instance, expected_version=int(raw) if raw else None)
        return Response(status=204)


class PromptOut(serializers.ModelSerializer):
    class Meta:
        model = Prompt
        fields: ClassVar[list[str]] = [
            "id",
            "seq",
            "kind",
            "payload",
            "method",
            "author",
            "undone",
            "created_at",
        ]


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
        permissions.require(role, permissions.ADD_PROMPTS)
        prompt = services.prompt_append(
            instance=instance, author=request.user, **validated(PromptIn, request.data)
        )
        return Response(PromptOut(prompt).data, status=201)


class PromptUndoApi(APIView):
    action = "undo"

    @extend_schema(request=None, responses={200: PromptOut})
    def post(self, request, instance_id: int):
        instance, role = selectors.instance_for(request.user, instance_id)
        permissions.require(
            role, permissions.UNDO_PROMPTS if self.action == "undo" else permissions.REDO_PROMPTS
        )
        fn = services.prompt_undo if self.action == "undo" else services.prompt_redo
        prompt = fn(instance=instance)
        if prompt is None:
            raise ApplicationError(f"nothing to {self.action}")
        return Response(PromptOut(prompt).data)


class PromptRedoApi(PromptUndoApi):
    action = "redo"


class TaskOut(serializers.ModelSerializer):
    image_ids = serializers.SerializerMethodField()
    assignee_username = serializers.CharField(
        source="assignee.username", default=None, read_only=True
    )
    # Set by ``selectors.task_list`` (absent on a single task, where they read as null).
    images_total = serializers.IntegerField(read_only=True, default=None)
    images_done = serializers.IntegerField(read_only=True, default=None)

    class Meta:
        model = Task
        fields: ClassVar[list[str]] = [
            "id",
            "project",
            "dataset",
            "name",
            "assignee",
            "assignee_username",
            "state",
            "image_ids",
            "images_total",
            "images_done",
            "created_at",
        ]

    def get_image_ids(self, obj: Task) -> list[int]:
        return sorted(img.id for img in obj.images.all())


class TaskIn(serializers.Serializer):
    dataset_id = id_field()
    name = serializers.CharField(max_length=200)
    assignee_id = id_field(required=False, allow_null=True, default=None)
    image_ids = serializers.ListField(
        child=id_field(), allow_empty=True, max_length=assignments.MAX_TASK_IMAGES
    )


class TaskPatch(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    assignee_id = id_field(required=False, allow_null=True)
    state = serializers.ChoiceField(choices=Task.State.choices, required=False)
    image_ids = serializers.ListField(
        child=id_field(), required=False, max_length=assignments.MAX_TASK_IMAGES
    )


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


class TaskDetailApi(APIView):
    @extend_schema(responses=TaskOut)
    def get(self, request, task_id: int):
        task, _ = selectors.task_for(request.user, task_id)
        return Response(TaskOut(task).data)

    @extend_schema(request=TaskPatch, responses=TaskOut)
    def patch(self, request, task_id: int):
        task, role = selectors.task_for(request.user, task_id)
        data = validated(TaskPatch, request.data)
        permissions.require_task_change(role, data)
        task = services.task_update(task=task, changes=data, role=role)
        # with its progress, as the task list shows it: the page redraws the row from this
        row = selectors.task_list(request.user, task.project_id, role).filter(pk=task.pk).first()
        return Response(TaskOut(row or task).data)

    @extend_schema(responses={204: None})
    def delete(self, request, task_id: int):
        task, _ = selectors.task_for(request.user, task_id)
        require_admin(request.user, task.project_id, "delete tasks")
        services.task_delete(task=task)
        return Response(status=204)


class TaskBulkIn(serializers.Serializer):
    dataset_id = id_field()
    name = serializers.CharField(max_length=200)
    select = serializers.ChoiceField(
        choices=assignments.SELECTIONS,
        help_text="all images, a range of positions (first, last), or those in no open task",
    )
    first = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text="1-based, included"
    )
    last = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text="1-based, included"
    )
    assignee_ids = serializers.ListField(
        child=id_field(),
        required=False,
        default=list,
        max_length=assignments.MAX_SPLIT,
        help_text="one annotator per task: the images are split between them",
    )
    parts = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=assignments.MAX_SPLIT,
        help_text="unassigned tasks to split the images into (without assignee_ids)",
    )


class TaskBulkApi(APIView):
    """Create tasks from a selection of a dataset's images (owners and managers)."""

    @extend_schema(request=TaskBulkIn, responses={201: TaskOut(many=True)})
    def post(self, request, project_id: int):
        project, role = require_admin(request.user, project_id, "create tasks")
        data = validated(TaskBulkIn, request.data)
        dataset = Dataset.objects.filter(pk=data["dataset_id"], project=project).first()
        if dataset is None:
            raise ApplicationError("dataset_id is not a dataset of this project")
        tasks = assignments.tasks_create_from_selection(
            project=project,
            dataset=dataset,
            name=data["name"],
            selection=assignments.Selection(data["select"], data.get("first"), data.get("last")),
            assignee_ids=data["assignee_ids"],
            parts=data.get("parts"),
        )
        rows = selectors.task_list(request.user, project_id, role).filter(
            id__in=[t.id for t in tasks]
        )
        return Response(TaskOut(rows.prefetch_related("images"), many=True).data, status=201)
