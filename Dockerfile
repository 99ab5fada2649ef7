# syntax=docker/dockerfile:1.7
# One image recipe for every KSBB service. Build from the repository root (uv.lock and libs/ are needed):
#   docker build --build-arg SERVICE=registry -t ksbb-registry:0.1.0 .
# SERVICE names the service with the entry point ksbb-<SERVICE>: registry, pledges, notifier or publisher
# (services/<SERVICE>). The portal also serves browser assets installed from npm, so its image has its own
# recipe: docker build -f frontends/portal/Dockerfile -t ksbb-portal:0.1.0 .
# The image runs `ksbb-<SERVICE>` as uid 10001 and also ships the `ksbb` admin command (DLQ, topics).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---------------------------------------------------------------- builder ----
FROM ${PYTHON_IMAGE} AS builder

ARG SERVICE
ARG UV_VERSION=0.13.9

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=0 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN test -n "${SERVICE}" \
    || { echo "build with --build-arg SERVICE=<registry|pledges|notifier|publisher>" >&2; exit 1; }
RUN test "${SERVICE}" != portal \
    || { echo "the portal's image needs htmx from npm: build frontends/portal/Dockerfile" >&2; exit 1; }
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /src

# 1) Third-party dependencies only (cached until uv.lock or a pyproject changes).
#    Every workspace member's pyproject.toml is needed for workspace discovery.
COPY pyproject.toml uv.lock ./
COPY libs/contracts/pyproject.toml libs/contracts/pyproject.toml
COPY libs/kit/pyproject.toml libs/kit/pyproject.toml
COPY services/registry/pyproject.toml services/registry/pyproject.toml
COPY services/pledges/pyproject.toml services/pledges/pyproject.toml
COPY services/notifier/pyproject.toml services/notifier/pyproject.toml
COPY services/publisher/pyproject.toml services/publisher/pyproject.toml
COPY frontends/portal/pyproject.toml frontends/portal/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package "ksbb-${SERVICE}"

# 2) The workspace packages themselves, installed as regular (non-editable) wheels; `ksbb-service`
#    names the service's entry point so the runtime stage needs no build argument in ENTRYPOINT.
COPY libs/ libs/
COPY services/ services/
COPY frontends/ frontends/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package "ksbb-${SERVICE}" \
 && test -x "/app/.venv/bin/ksbb-${SERVICE}" \
 && test -x /app/.venv/bin/ksbb \
 && ln -s "ksbb-${SERVICE}" /app/.venv/bin/ksbb-service

# ---------------------------------------------------------------- runtime ----
FROM ${PYTHON_IMAGE} AS runtime

ARG SERVICE
LABEL org.opencontainers.image.title="ksbb-${SERVICE}" \
      org.opencontainers.image.description="KSBB ${SERVICE} service" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 ksbb \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin ksbb

# Only the virtual environment is shipped: no uv, no sources, no build tools.
# Owned by root and read-only for the app user.
COPY --from=builder /app/.venv /app/.venv

# A container is reached on its pod/container address, so it listens on every interface
# (the settings' default stays 127.0.0.1 for processes on a developer's machine).
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KSBB_ENV=production \
    KSBB_HTTP_HOST=0.0.0.0 \
    KSBB_HTTP_PORT=8000

WORKDIR /app
USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('KSBB_HTTP_PORT', '8000'), timeout=4).close()"]

ENTRYPOINT ["ksbb-service"]
