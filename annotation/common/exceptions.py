"""Application errors and how the API shows them.

Services raise these; the API layer turns them into JSON bodies of the form
``{"error": {"code": ..., "message": ..., "detail": {...}}}`` with a matching HTTP status.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

log = logging.getLogger(__name__)


def error_body(code: str, message: str, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """The house error shape, the one every refusal of the API has, whichever layer answers."""
    return {"error": {"code": code, "message": message, "detail": detail or {}}}


# What a caller sees of a failure we did not foresee: never the exception's text, which can
# carry settings, connection URLs or file paths. The traceback goes to the log only.
SERVER_ERROR = error_body(
    "server_error", "the server could not handle this request; the error is logged"
)


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


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.extra), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field": exc.messages}
        exc = drf_exceptions.ValidationError(detail)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    if isinstance(exc, RecursionError):
        # The JSON parser recursing through a deeply nested body: bad input, not our failure.
        exc = drf_exceptions.ParseError("JSON nested too deeply")
    response = exception_handler(exc, context)
    if response is None:
        view = context.get("view")
        log.error(
            "unhandled error in %s", type(view).__name__ if view else "an API view", exc_info=exc
        )
        set_rollback()
        return Response(SERVER_ERROR, status=500)
    if isinstance(exc, drf_exceptions.APIException):
        message = exc.detail if isinstance(exc.detail, str) else "invalid input"
        response.data = {
            "error": {
                "code": exc.get_codes() if isinstance(exc.get_codes(), str) else "invalid",
                "message": str(message),
                "detail": exc.detail if not isinstance(exc.detail, str) else {},
            }
        }
    return response


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: the house JSON body for ``/api/`` paths no view answers (a client
    reads ``error.code``, never an HTML page), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("not_found", f"no API endpoint at {request.path}"), status=404
        )
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: the house JSON body for ``/api/`` paths (errors raised outside DRF's
    views, e.g. in middleware), Django's plain page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(SERVER_ERROR, status=500)
    return defaults.server_error(request)
