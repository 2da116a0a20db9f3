# syntax=docker/dockerfile:1
# Web image: Django + Channels under uvicorn. No `ml` extra, so torch never enters this image.
# Also runs the CPU Celery worker (queue `default`) in compose.
# Build from the repository root:  docker build -f docker/web.Dockerfile -t maskwright-web .
FROM python:3.11-slim

# PYTHONPATH: import `config` and `annotation` from the source tree in /app rather than the
# copies pip puts in site-packages, so that settings find REPO_ROOT=/app and collectstatic
# finds frontend/ (which is not in the wheel). platform/ is an import root, never a package.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app/platform:/app \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    MASKWRIGHT_HOME=/data

# The same uid in every image, so web and workers can all write the shared /data volume.
# A fresh named volume copies this ownership from the image.
RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin maskwright \
    && mkdir -p /data \
    && chown maskwright:maskwright /data

WORKDIR /app

# Dependencies first, read from pyproject.toml, so editing the code does not reinstall them.
# Every dependency has a manylinux wheel for CPython 3.11: no compiler needed.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# The project itself, without the `ml` extra (its dependencies are all satisfied by now).
COPY . /app
RUN pip install . \
    && chmod 0755 /app/docker/entrypoint-web.sh

USER maskwright
EXPOSE 8000

# migrate + collectstatic, then exec the command below.
ENTRYPOINT ["/app/docker/entrypoint-web.sh"]
CMD ["uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "off", "--proxy-headers"]
