"""Who am I, and API tokens."""

from __future__ import annotations

from typing import ClassVar

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.common.apis import validated
from annotation.common.exceptions import ApplicationError


class MeOut(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_staff = serializers.BooleanField()


class MeApi(APIView):
    @extend_schema(responses=MeOut)
    def get(self, request):
        return Response(MeOut(request.user).data)


class TokenIn(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"})


class TokenOut(serializers.Serializer):
    token = serializers.CharField()


class TokenApi(APIView):
    """Trade a username and password for an API token (send it as ``Authorization: Token …``)."""

    permission_classes: ClassVar[list[type]] = [AllowAny]
    authentication_classes: ClassVar[list[type]] = []

    @extend_schema(request=TokenIn, responses=TokenOut)
    def post(self, request):
        data = validated(TokenIn, request.data)
        user = authenticate(request, username=data["username"], password=data["password"])
        if user is None:
            err = ApplicationError("wrong username or password")
            err.status_code = 401
            raise err
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
