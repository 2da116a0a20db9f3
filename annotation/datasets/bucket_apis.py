"""A project's bucket sources (owners and managers only) and attaching one to a dataset.

Other members get 403, non-members 404 (``projects.access``). The credentials go in
(``access_key_id``, ``secret_access_key``) and never come out: a source shows only whether
they are set and the key id's last four characters.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import IntegrityError, transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.common.apis import validated
from annotation.common.exceptions import ApplicationError, Conflict, NotFound
from annotation.jobs.services import job_launch
from annotation.projects.access import require_admin, role_for_object
from annotation.projects.models import ADMIN_ROLES

from . import buckets, selectors
from .job_apis import JobOut
from .models import BucketSource

_BUCKET_NAME = r"^[a-z0-9][a-z0-9.\-_]{1,254}$"  # S3's rule, loosened for MinIO / Ceph names


class BucketSourceOut(serializers.ModelSerializer):
    credentials_set = serializers.SerializerMethodField(
        help_text="whether an access key id and secret are stored (false: anonymous reads)"
    )
    access_key_id_hint = serializers.SerializerMethodField(
        help_text="the key id's last four characters, '…ABCD' ('' when unset or short)"
    )
    images = serializers.SerializerMethodField(help_text="images of datasets read from it")

    def get_credentials_set(self, source: BucketSource) -> bool:
        return bool(source.access_key_id_encrypted and source.secret_access_key_encrypted)

    def get_access_key_id_hint(self, source: BucketSource) -> str:
        return f"…{source.access_key_id_last4}" if source.access_key_id_last4 else ""

    def get_images(self, source: BucketSource) -> int:
        return buckets.images_of(source.id)

    class Meta:
        model = BucketSource
        fields: ClassVar[list[str]] = [
            "id",
            "project",
            "name",
            "endpoint_url",
            "bucket",
            "region",
            "prefix",
            "credentials_set",
            "access_key_id_hint",
            "images",
            "created_at",
            "updated_at",
        ]


class BucketSourceIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    endpoint_url = serializers.URLField(
        max_length=500, required=False, allow_blank=True, default="",
        help_text="the S3 API's URL (MinIO, Ceph, R2...); empty for AWS S3",
    )  # fmt: skip
    bucket = serializers.RegexField(_BUCKET_NAME, max_length=255)
    region = serializers.CharField(max_length=64, required=False, default="us-east-1")
    prefix = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    access_key_id = serializers.CharField(
        max_length=200, required=False, allow_blank=True, write_only=True, trim_whitespace=True
    )
    secret_access_key = serializers.CharField(
        max_length=400, required=False, allow_blank=True, write_only=True, trim_whitespace=True
    )


def _apply(source: BucketSource, data: dict[str, Any]) -> None:
    """Set the fields given; the credentials only when both are given (both "" to clear)."""
    for field in ("name", "endpoint_url", "bucket", "region", "prefix"):
        if field in data:
            setattr(source, field, data[field].strip("/") if field == "prefix" else data[field])
    buckets.allow_endpoint(source.endpoint_url)
    key, secret = data.get("access_key_id"), data.get("secret_access_key")
    if key is None and secret is None:
        return
    if key is None or secret is None or bool(key) != bool(secret):
        raise ApplicationError(
            "give access_key_id and secret_access_key together (both empty: anonymous reads)",
            extra={"field": "secret_access_key" if key else "access_key_id"},
        )
    buckets.set_credentials(source, key, secret)


def _save(source: BucketSource) -> BucketSource:
    try:
        with transaction.atomic():
            source.save()
    except IntegrityError:
        raise Conflict(
            f"this project already has a bucket source named {source.name!r}",
            extra={"field": "name"},
        ) from None
    return source


def _source_for(request, source_id: int, action: str) -> BucketSource:
    source = BucketSource.objects.filter(pk=source_id).first()
    if source is None:
        raise NotFound(f"bucket source {source_id} not found")
    role_for_object(
        request.user, source.project_id, f"bucket source {source_id} not found", ADMIN_ROLES, action
    )
    return source


class BucketSourceListApi(APIView):
    @extend_schema(responses=BucketSourceOut(many=True))
    def get(self, request, project_id: int):
        require_admin(request.user, project_id, "see bucket sources")
        sources = BucketSource.objects.filter(project_id=project_id)
        return Response(BucketSourceOut(sources, many=True).data)

    @extend_schema(request=BucketSourceIn, responses={201: BucketSourceOut})
    def post(self, request, project_id: int):
        require_admin(request.user, project_id, "add bucket sources")
        data = validated(BucketSourceIn, request.data)
        source = BucketSource(project_id=project_id)
        _apply(source, data)
        return Response(BucketSourceOut(_save(source)).data, status=201)


class BucketSourceDetailApi(APIView):
    @extend_schema(responses=BucketSourceOut)
    def get(self, request, source_id: int):
        return Response(BucketSourceOut(_source_for(request, source_id, "see bucket sources")).data)

    @extend_schema(request=BucketSourceIn(partial=True), responses=BucketSourceOut)
    def patch(self, request, source_id: int):
        source = _source_for(request, source_id, "change bucket sources")
        _apply(source, validated(BucketSourceIn, request.data, partial=True))
        return Response(BucketSourceOut(_save(source)).data)

    @extend_schema(responses={204: None, 409: None})
    def delete(self, request, source_id: int):
        source = _source_for(request, source_id, "delete bucket sources")
        count = buckets.images_of(source.id)
        if count:
            # its images would lose their bytes: the datasets go first, or stay
            raise Conflict(
                f"{count} images of datasets are read from this bucket source; delete those "
                "datasets first",
                extra={"images": count},
            )
        source.delete()
        return Response(status=204)


class BucketSourceCheckApi(APIView):
    """List one page of the bucket: endpoint reachable, bucket there, credentials accepted."""

    @extend_schema(request=None, responses={200: None})
    def post(self, request, source_id: int):
        source = _source_for(request, source_id, "check bucket sources")
        prefix = str(request.data.get("prefix", "")) if hasattr(request.data, "get") else ""
        return Response({"ok": True, "objects_seen": buckets.check(source, prefix)})


class AttachIn(serializers.Serializer):
    bucket_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    prefix = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class DatasetAttachApi(APIView):
    """Attach the images under a bucket prefix to the dataset, or re-sync them (a launch
    again adds only new objects): a quick listing first refuses a wrong endpoint, a missing
    bucket or refused credentials (400 naming the field); then an ``attach`` job runs."""

    @extend_schema(request=AttachIn, responses={201: JobOut, 409: None})
    def post(self, request, dataset_id: int):
        dataset, _ = selectors.dataset_for(request.user, dataset_id)
        require_admin(request.user, dataset.project_id, "attach buckets")
        data = validated(AttachIn, request.data)
        source = BucketSource.objects.filter(
            pk=data["bucket_id"], project_id=dataset.project_id
        ).first()
        if source is None:
            raise NotFound(
                f"bucket source {data['bucket_id']} not found", extra={"field": "bucket_id"}
            )
        buckets.check(source, data["prefix"])
        job = job_launch(
            dataset=dataset,
            kind="attach",
            params={"bucket_id": source.id, "prefix": data["prefix"].strip("/")},
            user=request.user,
        )
        return Response(JobOut(job).data, status=201)
