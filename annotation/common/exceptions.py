"""Application errors and how the API shows them.

Services raise these; the API layer turns them into JSON bodies of the form
``{"error": {"code": ..., "message": ..., "detail": {...}}}`` with a matching HTTP status.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A request that cannot be carried out, with a message a person can act on."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"


class Forbidden(ApplicationError):
    status_code = 403
    code = "forbidden"


class Conflict(ApplicationError):
    """An optimistic-concurrency failure: the caller edited a stale version."""

    status_code = 409
    code = "conflict"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        body = {"error": {"code": exc.code, "message": exc.message, "detail": exc.extra}}
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field": exc.messages}
        exc = drf_exceptions.ValidationError(detail)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, drf_exceptions.APIException):
        message = exc.detail if isinstance(exc.detail, str) else "invalid input"
        response.data = {
            "error": {
                "code": exc.get_codes() if isinstance(exc.get_codes(), str) else "invalid",
                "message": str(message),
                "detail": exc.detail if not isinstance(exc.detail, str) else {},
            }
        }
    return response
