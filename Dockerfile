# syntax=docker/dockerfile:1
#
# Container image of mlops-exporter, the Prometheus exporter sidecar for ML models.
#
#   docker build -t mlops-exporter:0.1.0 .
#   docker run --rm -p 9874:9874 \
#     -v /path/to/logs:/var/log/model:ro \
#     -v /path/to/reference.csv:/etc/mlops-exporter/reference.csv:ro \
#     mlops-exporter:0.1.0
#
# Stage 1 builds a wheel of this project and of every dependency; stage 2 installs those
# wheels offline (--no-index), so the final image has no compiler, no build cache and no
# source tree. The default config (/etc/mlops-exporter/config.yml) expects prediction logs
# under /var/log/model/*.jsonl and a reference at /etc/mlops-exporter/reference.csv: mount
# your own files there, or mount a whole config of your own over the default one.
#
# hadolint passes with no rule ignored (tests/test_dockerfile.py runs it).

# --- stage 1: wheels --------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
# Only what the wheel needs (see .dockerignore): a change to tests or docs keeps this cache.
COPY pyproject.toml README.md ./
COPY mlops_core ./mlops_core
COPY exporter ./exporter

# numpy, scipy, orjson and bcrypt have manylinux wheels for this base: no compiler needed.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- stage 2: runtime -------------------------------------------------------------------------
# Same base as stage 1, so the wheels match its Python ABI and glibc.
FROM python:3.11.14-slim-bookworm

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="mlops-exporter" \
      org.opencontainers.image.description="Prometheus exporter sidecar for ML models: data drift, latency and traffic from prediction logs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/mlops-exporter/mlops-exporter" \
      org.opencontainers.image.url="https://github.com/mlops-exporter/mlops-exporter" \
      org.opencontainers.image.documentation="https://github.com/mlops-exporter/mlops-exporter#deployment" \
      org.opencontainers.image.vendor="mlops-exporter authors"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    HEALTHCHECK_URL=http://127.0.0.1:9874/-/healthy

# Install from the wheels of stage 1 only (--no-index: nothing is fetched here). The bind
# mount keeps the wheels out of every layer of the final image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl

# A fixed numeric UID/GID (65532, the "nonroot" of distroless images) so that Kubernetes'
# runAsNonRoot can verify it and volume permissions can be planned (fsGroup, chown).
# /var/log/model and /var/lib/mlops-exporter exist and belong to it, so a named Docker volume
# mounted there starts out owned by the exporter's user.
RUN groupadd --system --gid 65532 mlops \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin mlops \
    && mkdir -p /etc/mlops-exporter /var/log/model /var/lib/mlops-exporter \
    && chown 65532:65532 /var/log/model /var/lib/mlops-exporter

COPY deploy/docker/config.yml /etc/mlops-exporter/config.yml

USER 65532:65532
WORKDIR /var/lib/mlops-exporter

EXPOSE 9874

# python's urllib: the slim base has no curl or wget. Set HEALTHCHECK_URL when the exporter
# listens elsewhere (--web.listen-address). With TLS or basic auth (--web.config.file) this
# check cannot authenticate: disable it (docker run --no-healthcheck) and probe from outside.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; r = urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4); sys.exit(0 if r.status == 200 else 1)"]

ENTRYPOINT ["mlops-exporter"]
CMD ["--config.file=/etc/mlops-exporter/config.yml"]
