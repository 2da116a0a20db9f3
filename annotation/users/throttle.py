"""Failed sign-ins, counted per client address and per username, in Django's cache (Redis).

Every way to sign in (the token API, the login page, Django admin's login) goes through
``django.contrib.auth.authenticate``, which sends ``user_login_failed`` on a wrong password or
an unknown name: that signal is counted here (wired in ``apps.py``). The sign-in views are
wrapped with :func:`login_throttled`, which answers 429 with Retry-After, before any password
is checked, once an address or a username has used up its failures of the window.

An address gets ``LOGIN_FAILURES_PER_ADDRESS`` failures a window; a username gets the higher
``LOGIN_FAILURES_PER_USERNAME``, to bound guesses spread over many addresses without letting
a single address lock someone out. Windows are fixed (``LOGIN_WINDOW_S``, aligned to the
clock): a count is one INCR, and the end of the window is the Retry-After.

Behind a reverse proxy the client address is what uvicorn's ``--proxy-headers`` reads from
X-Forwarded-For of a trusted proxy (``FORWARDED_ALLOW_IPS``); without it every client would
share the proxy's address.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

from annotation.common.exceptions import error_body


def _window() -> tuple[int, int]:
    """(index of the current window, seconds until it ends)."""
    length = settings.MASKWRIGHT["LOGIN_WINDOW_S"]
    now = int(time.time())
    return now // length, length - now % length


def _counters(username: str | None, address: str | None) -> list[tuple[str, int]]:
    """(cache key, failures allowed) of each counter that applies, in the current window."""
    limits, (window, _) = settings.MASKWRIGHT, _window()
    out = []
    if address:
        out.append((f"login-fail:addr:{window}:{address}", limits["LOGIN_FAILURES_PER_ADDRESS"]))
    if username:
        # hashed: any text a client sends makes a safe, short key
        digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
        out.append((f"login-fail:user:{window}:{digest}", limits["LOGIN_FAILURES_PER_USERNAME"]))
    return out


def client_address(request: Any) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def login_retry_after(*, username: str | None, address: str | None) -> int:
    """Seconds until a sign-in for ``username`` from ``address`` is accepted; 0 if it is now."""
    counters = _counters(username, address)
    counts = cache.get_many([key for key, _ in counters])
    if any(counts.get(key, 0) >= limit for key, limit in counters):
        return _window()[1]
    return 0


def login_failure_record(*, username: str | None, address: str | None) -> None:
    timeout = settings.MASKWRIGHT["LOGIN_WINDOW_S"] + 60  # the key outlives its window a little
    for key, _ in _counters(username, address):
        cache.add(key, 0, timeout=timeout)  # keeps an existing count
        try:
            cache.incr(key)
        except ValueError:  # expired between the two calls
            cache.set(key, 1, timeout=timeout)


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    """``user_login_failed`` receiver. A call without a request (a shell, the test client's
    ``login``) counts for the username only."""
    username = credentials.get("username")
    address = client_address(request) if request is not None else None
    login_failure_record(username=username if isinstance(username, str) else None, address=address)


def _username_of(request: HttpRequest) -> str | None:
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return None
        name = body.get("username") if isinstance(body, dict) else None
        return name if isinstance(name, str) else None
    return request.POST.get("username")


def login_throttled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a sign-in view: a POST from a blocked address or for a blocked username gets
    429 (JSON in the API's error shape under /api/, a short page elsewhere) and the view,
    and so the password check, is never reached."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST":
            wait = login_retry_after(
                username=_username_of(request), address=client_address(request)
            )
            if wait:
                return _refusal(request, wait)
        return view(request, *args, **kwargs)

    return wrapped


def _refusal(request: HttpRequest, wait: int) -> HttpResponse:
    minutes = max(1, round(wait / 60))
    message = f"too many failed sign-ins; try again in {minutes} minute{'s' if minutes > 1 else ''}"
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            error_body("throttled", message, {"retry_after": wait}), status=429
        )
    else:
        page = f"<!doctype html><title>Sign-in refused</title><p>{message.capitalize()}.</p>"
        response = HttpResponse(page, status=429, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(wait)
    return response
