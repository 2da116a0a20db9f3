"""ASGI entry: HTTP goes to Django, websockets through a same-origin check and session auth."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
# Django must be set up before anything imports models (the routing modules do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter

from annotation.common.bodylimit import BodyLimitMiddleware
from annotation.common.origin import SameOriginValidator
from annotation.common.routing import websocket_urlpatterns

application = ProtocolTypeRouter(
    {
        # before Django, which stores a whole body before any of its middleware runs
        "http": BodyLimitMiddleware(django_asgi_app),
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
