"""The review queue of pseudo labels: list, counts, one-by-one and bulk review; and the
"To fix" list of the masks a reviewer sent to the current user.

Reviewers, managers and owners review; annotators get 403, non-members 404 (as everywhere).
Everyone sees only their own "To fix" list.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.common.apis import validated
from annotation.common.exceptions import Forbidden
from annotation.common.pagination import DefaultPagination
from annotation.projects.access import a_role, project_for, require_role, sees_all_images

from . import review, selectors
from .apis import InstanceOut
from .models import Instance, ReviewState
from .permissions import REVIEWERS

_SOURCE_MAX = Instance._meta.get_field("source").max_length


def _source_field() -> serializers.CharField:
    return serializers.CharField(
        required=False,
        max_length=_SOURCE_MAX,
        help_text="only the pseudo labels of this source (the method that proposed them)",
    )


class ReviewFilterIn(serializers.Serializer):
    source = _source_field()
    state = serializers.ChoiceField(choices=ReviewState.choices, required=False)
    dataset = serializers.IntegerField(required=False)
    min_score = serializers.FloatField(required=False, help_text="score ≥ this (inclusive)")
    max_score = serializers.FloatField(required=False, help_text="score ≤ this (inclusive)")


def _filters(data: dict) -> review.ReviewFilters:
    return review.ReviewFilters(
        source=data.get("source"),
        state=data.get("state"),
        dataset_id=data.get("dataset"),
        min_score=data.get("min_score"),
        max_score=data.get("max_score"),
    )


class ReviewRowOut(serializers.Serializer):
    id = serializers.IntegerField()
    image = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    label = serializers.IntegerField(allow_null=True)
    mask = serializers.JSONField()
    bbox = serializers.ListField(child=serializers.FloatField())
    area = serializers.IntegerField()
    source = serializers.CharField()
    model_name = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    review_state = serializers.CharField()
    version = serializers.IntegerField()
    assignee = serializers.IntegerField(allow_null=True, help_text="who fixes it (needs_fix only)")
    assignee_username = serializers.CharField(allow_null=True)


class ReviewListApi(APIView):
    @extend_schema(parameters=[ReviewFilterIn], responses=ReviewRowOut(many=True))
    def get(self, request, project_id: int):
        require_role(request.user, project_id, REVIEWERS, "review pseudo labels")
        filters = _filters(validated(ReviewFilterIn, request.query_params))
        paginator = DefaultPagination()
        page = paginator.paginate_queryset(
            review.review_rows(project_id, filters), request, view=self
        )
        return paginator.get_paginated_response([review.review_row_out(row) for row in page])


class ReviewCountOut(serializers.Serializer):
    source = serializers.CharField()
    review_state = serializers.CharField()
    count = serializers.IntegerField()
    pseudo = serializers.IntegerField(help_text="how many of them are pseudo labels")


class ReviewCountsApi(APIView):
    @extend_schema(responses=ReviewCountOut(many=True))
    def get(self, request, project_id: int):
        require_role(request.user, project_id, REVIEWERS, "see review counts")
        return Response(review.review_counts(project_id))


class ReviewBulkIn(serializers.Serializer):
    action = serializers.ChoiceField(choices=sorted(review.ACTIONS))
    ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=10_000)
    source = _source_field()
    dataset = serializers.IntegerField(required=False)
    min_score = serializers.FloatField(required=False)
    max_score = serializers.FloatField(required=False)
    assignee = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text=(
            "needs_fix only: the user who fixes them; default: each image's one task annotator"
        ),
    )


class ReviewBulkApi(APIView):
    @extend_schema(request=ReviewBulkIn, responses={200: None})
    def post(self, request, project_id: int):
        require_role(request.user, project_id, REVIEWERS, "review pseudo labels")
        data = validated(ReviewBulkIn, request.data)
        ids = data.pop("ids", None)
        action = data.pop("action")
        assignee = data.pop("assignee")
        filters = None if ids is not None else _filters(data)
        changed = review.review_bulk(
            project_id=project_id, action=action, ids=ids, filters=filters, assignee_id=assignee
        )
        return Response({"changed": changed, "review_state": review.ACTIONS[action].value})


class ReviewActionIn(serializers.Serializer):
    action = serializers.ChoiceField(choices=sorted(review.ACTIONS))
    version = serializers.IntegerField(help_text="the version you reviewed; a stale one gets 409")
    assignee = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text=(
            "needs_fix only: the user who fixes it;"
            " default: the one annotator of a task holding the image"
        ),
    )


class InstanceReviewApi(APIView):
    @extend_schema(request=ReviewActionIn, responses={200: InstanceOut, 409: None})
    def post(self, request, instance_id: int):
        _, role = selectors.instance_for(request.user, instance_id)
        if role not in REVIEWERS:
            raise Forbidden(f"{a_role(role)} cannot review masks")
        data = validated(ReviewActionIn, request.data)
        instance = review.instance_review(
            instance_id=instance_id,
            action=data["action"],
            expected_version=data["version"],
            assignee_id=data["assignee"],
        )
        return Response({**InstanceOut(instance).data, "assignee": instance.assignee_id})


class FixRowOut(serializers.Serializer):
    id = serializers.IntegerField()
    image = serializers.IntegerField()
    image_name = serializers.CharField()
    task = serializers.IntegerField(
        allow_null=True, help_text="a task of yours holding the image: open it there"
    )
    label = serializers.IntegerField(allow_null=True)
    source = serializers.CharField()
    model_name = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    bbox = serializers.ListField(child=serializers.FloatField())
    version = serializers.IntegerField()
    updated_at = serializers.DateTimeField()


class FixListApi(APIView):
    """The current user's needs-fix masks in a project (any member; non-members 404)."""

    @extend_schema(responses=FixRowOut(many=True))
    def get(self, request, project_id: int):
        _, role = project_for(request.user, project_id)
        paginator = DefaultPagination()
        page = paginator.paginate_queryset(
            review.fix_rows(user=request.user, project_id=project_id), request, view=self
        )
        rows = review.fix_rows_out(
            list(page), user=request.user, project_id=project_id, sees_all=sees_all_images(role)
        )
        return paginator.get_paginated_response(rows)
