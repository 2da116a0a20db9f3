"""The annotator's side: a task's per-image progress, the "done" mark on one image, and
adopting a pending proposal as one's own mask."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.common.apis import int_field, validated

from . import permissions, progress, selectors
from .apis import InstanceOut


class ProgressImageOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    done = serializers.BooleanField()


class ProgressOut(serializers.Serializer):
    task_id = serializers.IntegerField()
    state = serializers.CharField()
    images_total = serializers.IntegerField()
    images_done = serializers.IntegerField()
    images = ProgressImageOut(many=True)


class TaskProgressApi(APIView):
    @extend_schema(responses=ProgressOut)
    def get(self, request, task_id: int):
        task, _ = selectors.task_for(request.user, task_id)
        return Response(progress.task_progress(task))


class TaskImageDoneApi(APIView):
    """PUT marks the image done for the task, DELETE takes the mark back; both answer with
    the task's progress."""

    @extend_schema(request=None, responses=ProgressOut)
    def put(self, request, task_id: int, image_id: int):
        return self._set(request, task_id, image_id, done=True)

    @extend_schema(request=None, responses=ProgressOut)
    def delete(self, request, task_id: int, image_id: int):
        return self._set(request, task_id, image_id, done=False)

    def _set(self, request, task_id: int, image_id: int, *, done: bool) -> Response:
        task, role = selectors.task_for(request.user, task_id)
        progress.task_image_done_set(
            task=task, role=role, image_id=image_id, user=request.user, done=done
        )
        return Response(progress.task_progress(task))


class AdoptIn(serializers.Serializer):
    version = int_field(min_value=0, help_text="the version you saw; a stale one gets 409")


class ProposalAdoptApi(APIView):
    """POST: take a pending proposal on the canvas as one's own mask (accept it as it is)."""

    @extend_schema(request=AdoptIn, responses={200: InstanceOut, 409: None})
    def post(self, request, instance_id: int):
        _, role = selectors.instance_for(request.user, instance_id)
        permissions.require(role, permissions.EDIT_MASKS)
        data = validated(AdoptIn, request.data)
        instance = progress.proposal_adopt(
            instance_id=instance_id, expected_version=data["version"], user=request.user
        )
        return Response(InstanceOut(instance).data)
