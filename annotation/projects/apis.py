"""Projects, members and label classes."""

from __future__ import annotations

from typing import ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.common.apis import validated
from annotation.common.exceptions import NotFound

from . import services
from .access import project_for, require_admin, require_role
from .models import LabelClass, Membership, Project, Role


class LabelOut(serializers.ModelSerializer):
    class Meta:
        model = LabelClass
        fields: ClassVar[list[str]] = ["id", "name", "color", "position"]


class ProjectOut(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()
    labels = LabelOut(many=True, read_only=True)

    class Meta:
        model = Project
        fields: ClassVar[list[str]] = ["id", "name", "description", "created_at", "role", "labels"]

    def get_role(self, obj: Project) -> str | None:
        return self.context.get("roles", {}).get(obj.id)


class ProjectIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ProjectPatch(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class ProjectListApi(APIView):
    @extend_schema(responses=ProjectOut(many=True))
    def get(self, request):
        roles = dict(Membership.objects.filter(user=request.user).values_list("project_id", "role"))
        projects = Project.objects.filter(id__in=roles).prefetch_related("labels").order_by("id")
        return Response(ProjectOut(projects, many=True, context={"roles": roles}).data)

    @extend_schema(request=ProjectIn, responses={201: ProjectOut})
    def post(self, request):
        data = validated(ProjectIn, request.data)
        project = services.project_create(owner=request.user, **data)
        return Response(
            ProjectOut(project, context={"roles": {project.id: Role.OWNER}}).data, status=201
        )


class ProjectDetailApi(APIView):
    @extend_schema(responses=ProjectOut)
    def get(self, request, project_id: int):
        project, role = project_for(request.user, project_id)
        return Response(ProjectOut(project, context={"roles": {project.id: role}}).data)

    @extend_schema(request=ProjectPatch, responses=ProjectOut)
    def patch(self, request, project_id: int):
        project, role = require_admin(request.user, project_id, "edit the project")
        project = services.project_update(
            project=project, changes=validated(ProjectPatch, request.data)
        )
        return Response(ProjectOut(project, context={"roles": {project.id: role}}).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id: int):
        project, _ = require_role(request.user, project_id, {Role.OWNER}, "delete the project")
        services.project_delete(project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberOut(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    user_id = serializers.IntegerField()

    class Meta:
        model = Membership
        fields: ClassVar[list[str]] = ["id", "user_id", "username", "role"]


class MemberIn(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)


class MemberListApi(APIView):
    @extend_schema(responses=MemberOut(many=True))
    def get(self, request, project_id: int):
        project, _ = project_for(request.user, project_id)
        members = project.memberships.select_related("user").order_by("id")
        return Response(MemberOut(members, many=True).data)

    @extend_schema(request=MemberIn, responses={201: MemberOut})
    def post(self, request, project_id: int):
        project, role = require_admin(request.user, project_id, "manage members")
        data = validated(MemberIn, request.data)
        membership = services.membership_set(project=project, by=role, **data)
        return Response(MemberOut(membership).data, status=201)


class AccountIn(serializers.Serializer):
    # Bounded here too, so that an oversized value is a 400 before any work.
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(
        max_length=128, trim_whitespace=False, style={"input_type": "password"}
    )
    role = serializers.ChoiceField(choices=Role.choices)


class AccountCreateApi(APIView):
    """Create an account and make it a member in one step (owners and managers). The answer is
    the membership: it never echoes the password or anything derived from it."""

    @extend_schema(request=AccountIn, responses={201: MemberOut})
    def post(self, request, project_id: int):
        project, role = require_admin(request.user, project_id, "create accounts")
        data = validated(AccountIn, request.data)
        membership = services.member_account_create(
            project=project, by=role, by_user=request.user, **data
        )
        return Response(MemberOut(membership).data, status=201)


class MemberDetailApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, project_id: int, membership_id: int):
        project, role = require_admin(request.user, project_id, "manage members")
        membership = project.memberships.filter(pk=membership_id).first()
        if membership is None:
            raise NotFound(f"membership {membership_id} not found")
        services.membership_remove(membership=membership, by=role)
        return Response(status=204)


class LabelIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    color = serializers.CharField(max_length=7)


class LabelPatch(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    color = serializers.CharField(max_length=7, required=False)


class LabelOrderIn(serializers.Serializer):
    label_ids = serializers.ListField(child=serializers.IntegerField())


class LabelListApi(APIView):
    @extend_schema(responses=LabelOut(many=True))
    def get(self, request, project_id: int):
        project, _ = project_for(request.user, project_id)
        return Response(LabelOut(project.labels.all(), many=True).data)

    @extend_schema(request=LabelIn, responses={201: LabelOut})
    def post(self, request, project_id: int):
        project, _ = require_admin(request.user, project_id, "manage labels")
        label = services.label_create(project=project, **validated(LabelIn, request.data))
        return Response(LabelOut(label).data, status=201)


class LabelOrderApi(APIView):
    @extend_schema(request=LabelOrderIn, responses=LabelOut(many=True))
    def put(self, request, project_id: int):
        project, _ = require_admin(request.user, project_id, "manage labels")
        labels = services.label_reorder(project=project, **validated(LabelOrderIn, request.data))
        return Response(LabelOut(labels, many=True).data)


class LabelDetailApi(APIView):
    def _label(self, request, project_id: int, label_id: int) -> LabelClass:
        project, _ = require_admin(request.user, project_id, "manage labels")
        label = project.labels.filter(pk=label_id).first()
        if label is None:
            raise NotFound(f"label {label_id} not found")
        return label

    @extend_schema(request=LabelPatch, responses=LabelOut)
    def patch(self, request, project_id: int, label_id: int):
        label = self._label(request, project_id, label_id)
        label = services.label_update(label=label, changes=validated(LabelPatch, request.data))
        return Response(LabelOut(label).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id: int, label_id: int):
        services.label_delete(label=self._label(request, project_id, label_id))
        return Response(status=204)
