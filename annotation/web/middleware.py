"""Content-Security-Policy on HTML pages (Django 5.2 has no middleware of its own for it).

The app is ES modules and one stylesheet from this origin, so the policy needs no inline
allowance: an injected ``<script>`` or ``onclick=`` does not run. The annotation socket is the
one connection to elsewhere, ws:// or wss:// on the page's own host, named per request
(``'self'`` covers ws only in newer browsers). The other headers come from Django's
SecurityMiddleware (nosniff, Referrer-Policy) and XFrameOptionsMiddleware (DENY).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER in response or not response.get("Content-Type", "").startswith("text/html"):
            return response
        if any(
            request.path.startswith(prefix) for prefix in settings.CONTENT_SECURITY_POLICY_EXEMPT
        ):
            return response
        policy = next(
            (
                value
                for prefix, value in settings.CONTENT_SECURITY_POLICY_FOR.items()
                if request.path.startswith(prefix)
            ),
            settings.CONTENT_SECURITY_POLICY,
        )
        host = request.get_host()
        response[HEADER] = f"{policy}; connect-src 'self' ws://{host} wss://{host}"
        return response
