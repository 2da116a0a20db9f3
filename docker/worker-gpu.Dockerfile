# syntax=docker/dockerfile:1
# GPU worker image: Celery with the `ml` extra and a CUDA build of torch.
# Default command serves the `interactive` queue; compose overrides it for `batch`.
# Build from the repository root:  docker build -f docker/worker-gpu.Dockerfile -t maskwright-worker-gpu .
#
# The torch wheels bring their own CUDA runtime libraries, so the base image mainly provides
# Ubuntu and the NVIDIA container conventions; the host driver must support CUDA 12.8.
# Change both build args together to move to another CUDA 12.x line (e.g. 12.6 / cu126).
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu22.04
FROM ${CUDA_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128

# PYTHONPATH: import `config` from the source tree in /app (REPO_ROOT=/app), as in the web
# image. platform/ is an import root, never a package.
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/platform:/app \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    MASKWRIGHT_HOME=/data

# Python 3.11 (the project supports 3.11-3.12; Ubuntu 22.04 ships 3.10), from deadsnakes,
# in a venv so pip never touches the system Python.
RUN apt-get update \
    && apt-get install -y --no-install-recommends software-properties-common gpg-agent \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
    && apt-get purge -y --auto-remove software-properties-common gpg-agent \
    && rm -rf /var/lib/apt/lists/* \
    && python3.11 -m venv /opt/venv \
    && pip install --upgrade pip

# Same uid as the web image: both write the shared /data volume.
RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin maskwright \
    && mkdir -p /data \
    && chown maskwright:maskwright /data

# CUDA torch first, from PyTorch's index. These are the project's pinned versions (the `ml`
# extra in pyproject.toml pins the same); the +cu128 builds satisfy those pins, so the PyPI
# install below keeps them.
RUN pip install --index-url ${TORCH_INDEX_URL} torch==2.14.1 torchvision==0.29.1

# The other dependencies, read from pyproject.toml, so code edits do not reinstall them.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; p = tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['ml']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && python -c "import torch; assert torch.version.cuda, 'torch is not a CUDA build'"

WORKDIR /app
COPY . /app
RUN pip install ".[ml]"

USER maskwright

# solo pool: one task at a time in the main process, which keeps the model loaded on the GPU
# and avoids forking a process that has initialised CUDA.
CMD ["celery", "-A", "config.celery_app", "worker", "-Q", "interactive", "-P", "solo"]
