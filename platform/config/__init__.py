"""The Django project package (settings, URLs, ASGI entry, Celery app).

It lives in ``platform/config`` and is imported as ``config``: ``platform/`` is an import root,
never a package, so the standard library module ``platform`` is never shadowed.
"""

# Load the Celery app whenever Django loads, so `shared_task`s in the web process bind to it
# (and its Redis broker) rather than to Celery's default app.
from .celery_app import app as celery_app

__all__ = ["celery_app"]
