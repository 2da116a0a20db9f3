"""Trained models: list and upload per project, detail, delete, make default."""

from __future__ import annotations

from typing import ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.common.exceptions import ApplicationError, Forbidden, NotFound
from annotation.projects.access import require_admin, require_role, role_for_object
from annotation.projects.models import ADMIN_ROLES, SEE_ALL_ROLES, Membership

from . import selectors, services
from .models import TrainedModel


class TrainedModelOut(serializers.ModelSerializer):
    class Meta:
        model = TrainedModel
        fields: ClassVar[list[str]] = [
            "id",
            "project",
            "method",
            "name",
            "original_name",
            "size_bytes",
            "sha256",
            "config",
            "metrics",
            "state",
            "error",
            "origin",
            "job",
            "is_default",
            "created_by",
            "created_at",
        ]


class ModelListApi(APIView):
    parser_classes: ClassVar[list[type]] = [MultiPartParser, FormParser]
    body_limit = "MAX_MODEL_BYTES"  # read before the body is (annotation/common/bodylimit.py)

    @classmethod
    def authorize_body(cls, user, *, project_id: int) -> None:
        """404 / 403 unless ``user`` may upload models here. The body-limit middleware
        (annotation/common/bodylimit.py) calls it before the body is read."""
        require_admin(user, project_id, "upload models")

    @extend_schema(responses=TrainedModelOut(many=True))
    def get(self, request, project_id: int):
        require_role(request.user, project_id, SEE_ALL_ROLES, "see models")
        return Response(TrainedModelOut(selectors.models_of(project_id)[:200], many=True).data)

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "method": {
                        "type": "string",
                        "description": "a method whose `needs_trained_model` is true "
                        "in GET /api/methods/",
                    },
                    "name": {"type": "string"},
                    "backbone": {"type": "string"},
                    "file": {"type": "string", "format": "binary"},
                },
                "required": ["method", "file"],
            }
        },
        responses={201: TrainedModelOut},
    )
    def post(self, request, project_id: int):
        """Upload a published checkpoint (a detectron2 pickle with a ``model`` entry, or
        safetensors). The reply is the model, ``importing``; a batch worker checks every key
        and converts it, then it turns ``ready`` (or ``failed`` with the reason)."""
        self.authorize_body(request.user, project_id=project_id)
        upload = request.FILES.get("file")
        if upload is None:
            raise ApplicationError("no file: send the checkpoint in the 'file' field")
        model = services.model_upload(
            project_id=project_id,
            method=request.data.get("method", ""),
            name=request.data.get("name", ""),
            upload=upload,
            filename=upload.name,
            backbone=request.data.get("backbone") or None,
            user=request.user,
        )
        return Response(TrainedModelOut(model).data, status=201)


def _model_for(request, model_id: int) -> TrainedModel:
    model = TrainedModel.objects.filter(pk=model_id).first()
    if model is None:
        raise NotFound(f"model {model_id} not found")
    role_for_object(
        request.user, model.project_id, f"model {model_id} not found", SEE_ALL_ROLES, "see models"
    )
    return model


class ModelDetailApi(APIView):
    @extend_schema(responses=TrainedModelOut)
    def get(self, request, model_id: int):
        return Response(TrainedModelOut(_model_for(request, model_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, model_id: int):
        model = _model_for(request, model_id)
        require_admin(request.user, model.project_id, "delete models")
        services.model_delete(model=model)
        return Response(status=204)


class ModelDefaultApi(APIView):
    @extend_schema(request=None, responses=TrainedModelOut)
    def post(self, request, model_id: int):
        model = _model_for(request, model_id)
        require_admin(request.user, model.project_id, "choose the default model")
        return Response(TrainedModelOut(services.model_set_default(model=model)).data)


class MethodsApi(APIView):
    """Every registered segmentation method as it declared itself: label, prompt kinds,
    multi-object, backbones, and for those that need one, the model file they take."""

    @extend_schema(responses={200: {"type": "array", "items": {"type": "object"}}})
    def get(self, request):
        from annotation.segmentation.interactive.methods import catalog

        return Response(catalog())


class CheckpointsApi(APIView):
    """The published checkpoints (SAM's families) each alive interactive worker has on its
    disk, with their size and the device it computes on, and the missing ones with the folder
    to put them in. Staff and the owners and managers of any project may read it (the workers
    serve every project)."""

    @extend_schema(responses={200: {"type": "object"}})
    def get(self, request):
        user = request.user
        if not (
            user.is_staff
            or Membership.objects.filter(user_id=user.id, role__in=ADMIN_ROLES).exists()
        ):
            raise Forbidden("only staff and projects' owners and managers see the workers")
        from annotation.segmentation.interactive.checkpoints import overview
        from annotation.segmentation.interactive.dispatch import checkpoint_reports

        return Response({"workers": overview(checkpoint_reports())})
