"""Websockets from this site only: the page that opens a socket must have the origin the
socket is opened to (scheme, host and port), or be one of ``CSRF_TRUSTED_ORIGINS``.

Browsers send session cookies with a websocket handshake from any page, so the Origin header
is the only thing that tells our page from another site's (cross-site websocket hijacking).
Channels' ``AllowedHostsOriginValidator`` compares the Origin's host with ``ALLOWED_HOSTS``
and ignores the port: any other service on the same host (``http://127.0.0.1:9999``) passed.
Here the Origin must equal the origin of the request itself, read the way Django's CSRF check
reads it: the Host header (checked against ``ALLOWED_HOSTS``) and the scheme, taken from
``SECURE_PROXY_SSL_HEADER`` when a TLS proxy sets it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme, host (lower case, no brackets), port


def parse_origin(value: str) -> Origin | None:
    """(scheme, host, port) of an origin such as ``https://example.com:8443``; None if it is
    not an http(s) origin (``null``, a path, junk)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def _request_origin(scope: dict[str, Any], headers: dict[bytes, bytes]) -> Origin | None:
    """The origin the handshake was sent to: Host header and scheme; None for a Host that
    is missing, malformed or not in ALLOWED_HOSTS."""
    host = headers.get(b"host", b"").decode("latin-1")
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:  # as Django's request.scheme: the proxy's header wins when it is there
        name, secure_value = proxy
        sent = headers.get(name.removeprefix("HTTP_").lower().replace("_", "-").encode())
        if sent is not None:
            scheme = (
                "https" if sent.decode("latin-1").split(",")[0].strip() == secure_value else "http"
            )
    return scheme, domain.strip("[]"), int(port) if port else DEFAULT_PORTS[scheme]


def _trusted(origin: Origin) -> bool:
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        wildcard = "://*." in entry
        trusted = parse_origin(entry.replace("://*.", "://", 1))
        if trusted is None:
            continue
        scheme, host, port = trusted
        if (
            origin[0] == scheme
            and origin[2] == port
            and (origin[1] == host or (wildcard and origin[1].endswith("." + host)))
        ):
            return True
    return False


def same_origin(scope: dict[str, Any]) -> bool:
    headers = dict(scope.get("headers") or [])
    sent = headers.get(b"origin")
    origin = parse_origin(sent.decode("latin-1")) if sent else None
    if origin is None:  # browsers always send one on a websocket handshake
        return False
    return origin == _request_origin(scope, headers) or _trusted(origin)


class SameOriginValidator:
    """ASGI middleware: refuse a websocket handshake (403) whose Origin is not this site."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not same_origin(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
