"""Datasets, upload, and images (metadata, file, thumbnail)."""

from __future__ import annotations

import mimetypes
from typing import ClassVar

from django.http import FileResponse
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.common import media
from annotation.common.apis import validated
from annotation.common.exceptions import ApplicationError, NotFound
from annotation.common.pagination import DefaultPagination
from annotation.projects.access import ADMIN_ROLES, project_for, require_admin

from . import selectors, services
from .coco_labels import parse_category_map
from .models import Dataset, Image


class DatasetOut(serializers.ModelSerializer):
    image_count = serializers.IntegerField(read_only=True, default=None)

    class Meta:
        model = Dataset
        fields: ClassVar[list[str]] = ["id", "project", "name", "created_at", "image_count"]


class DatasetIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)


class ImageOut(serializers.ModelSerializer):
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields: ClassVar[list[str]] = [
            "id",
            "dataset",
            "original_name",
            "source_path",
            "width",
            "height",
            "sha256",
            "format",
            "size_bytes",
            "created_at",
            "file_url",
            "thumbnail_url",
        ]

    def get_file_url(self, obj: Image) -> str:
        return f"/api/images/{obj.id}/file"

    def get_thumbnail_url(self, obj: Image) -> str:
        return f"/api/images/{obj.id}/thumbnail"


class DatasetListApi(APIView):
    @extend_schema(responses=DatasetOut(many=True))
    def get(self, request, project_id: int):
        _, role = project_for(request.user, project_id)
        return Response(
            DatasetOut(selectors.dataset_list(request.user, project_id, role), many=True).data
        )

    @extend_schema(request=DatasetIn, responses={201: DatasetOut})
    def post(self, request, project_id: int):
        project, _ = require_admin(request.user, project_id, "create datasets")
        dataset = services.dataset_create(project=project, **validated(DatasetIn, request.data))
        return Response(DatasetOut(dataset).data, status=201)


class DatasetDetailApi(APIView):
    @extend_schema(responses=DatasetOut)
    def get(self, request, dataset_id: int):
        dataset, role = selectors.dataset_for(request.user, dataset_id)
        return Response(DatasetOut(selectors.dataset_with_count(request.user, dataset, role)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, dataset_id: int):
        dataset, _ = selectors.dataset_for(request.user, dataset_id)
        require_admin(request.user, dataset.project_id, "delete datasets")
        services.dataset_delete(dataset=dataset)
        return Response(status=204)


class UploadReportOut(serializers.Serializer):
    accepted = serializers.IntegerField()
    refused = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="of the refused: already in the dataset")
    files = serializers.ListField(child=serializers.DictField())
    coco = serializers.DictField(allow_null=True)


def _upload_parts(request) -> tuple[list[services.Upload], services.Upload | None]:
    """The ``files`` and the ``coco`` file of an upload form, refused when there is neither."""
    files = request.FILES.getlist("files")
    coco = request.FILES.get("coco")
    if coco is None and "coco" in request.data:
        # a form field, not a file: ignoring it would store the images without their masks
        raise ApplicationError(
            "'coco' must be a file (the COCO json), not a form field", extra={"field": "coco"}
        )
    if not files and coco is None:
        raise ApplicationError("no files: send images or zip archives in the 'files' field")
    uploads = [services.Upload(f.name, f) for f in files]
    return uploads, services.Upload(coco.name, coco) if coco is not None else None


_UPLOAD_FORM = {
    "type": "object",
    "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "coco": {"type": "string", "format": "binary"},
        "category_map": {
            "type": "string",
            "description": 'JSON: {"<COCO category id>": "new" | "drop" | <label id>}; a '
            'category left out is "new" (the label of its name, created if missing)',
        },
    },
}


class DatasetUploadApi(APIView):
    """Upload images and zip archives (field ``files``, repeated) and optionally a COCO json
    (field ``coco``) with a ``category_map``. Files above 2.5 MB are spooled to disk by
    Django's upload handlers, so an archive is never held in memory. Refused files are listed
    with their reason; masks already on the images are not added again."""

    parser_classes: ClassVar[list[type]] = [MultiPartParser, FormParser]
    body_limit = "MAX_UPLOAD_BYTES"  # read before the body is (annotation/common/bodylimit.py)

    @classmethod
    def authorize_body(cls, user, *, dataset_id: int) -> Dataset:
        """The dataset if ``user`` may upload to it, else the 404 / 403. The body-limit
        middleware (annotation/common/bodylimit.py) calls it before the body is read."""
        dataset, role = selectors.dataset_for(user, dataset_id)
        if role not in ADMIN_ROLES:
            require_admin(user, dataset.project_id, "upload images")
        return dataset

    @extend_schema(request={"multipart/form-data": _UPLOAD_FORM}, responses=UploadReportOut)
    def post(self, request, dataset_id: int):
        dataset = self.authorize_body(request.user, dataset_id=dataset_id)
        category_map = parse_category_map(request.data.get("category_map"))
        uploads, coco = _upload_parts(request)
        report = services.dataset_upload(
            dataset=dataset,
            uploads=uploads,
            coco=coco,
            category_map=category_map,
            author=request.user,
        )
        return Response(report.as_dict())


class DatasetUploadPreviewApi(DatasetUploadApi):
    """The COCO categories of an upload, read before it is made (the same ``files`` / ``coco``
    fields; only the json is read, nothing is stored): each with its annotation count and the
    id of the project label of the same name, plus the project's labels."""

    @extend_schema(request={"multipart/form-data": _UPLOAD_FORM}, responses={200: None})
    def post(self, request, dataset_id: int):
        dataset = self.authorize_body(request.user, dataset_id=dataset_id)
        uploads, coco = _upload_parts(request)
        return Response(services.coco_preview(dataset=dataset, uploads=uploads, coco=coco))


class ImageListApi(APIView):
    @extend_schema(responses=ImageOut(many=True))
    def get(self, request, dataset_id: int):
        dataset, role = selectors.dataset_for(request.user, dataset_id)
        qs = selectors.image_list(request.user, dataset, role)
        paginator = DefaultPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ImageOut(page, many=True).data)


class ImageDetailApi(APIView):
    @extend_schema(responses=ImageOut)
    def get(self, request, image_id: int):
        image, _ = selectors.image_for(request.user, image_id)
        return Response(ImageOut(image).data)


def _file_response(relative: str, content_type: str | None = None) -> FileResponse:
    """Stream a stored file from the media store (a local file or a bucket's object, never a
    link to the bucket): the caller has passed the tenancy check already."""
    try:
        handle = media.open_stream(relative)  # FileResponse closes it
    except (FileNotFoundError, ValueError):
        raise NotFound("the stored file is missing; run a verify job on the dataset") from None
    if content_type is None:
        content_type = mimetypes.guess_type(relative)[0] or "application/octet-stream"
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, max-age=86400"
    return response


class ImageFileApi(APIView):
    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY})
    def get(self, request, image_id: int):
        image, _ = selectors.image_for(request.user, image_id)
        return _file_response(image.file)


class ImageThumbnailApi(APIView):
    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY})
    def get(self, request, image_id: int):
        image, _ = selectors.image_for(request.user, image_id)
        return _file_response(image.thumbnail, "image/jpeg")
