"""The Django project package (settings, URLs, ASGI entry, Celery app).

It lives in ``platform/config`` and is imported as ``config``: ``platform/`` is an import root,
never a package, so the standard library module ``platform`` is never shadowed.
"""
