# syntax=docker/dockerfile:1
# ai-log-analyzer: one image for both CronJobs and the migration hook.
# The install steps live in scripts/install_image.sh, which CI also runs, so what this image
# contains is tested even where no image can be built.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY . .
RUN bash scripts/install_image.sh /opt/venv /app

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="ai-log-analyzer" \
      org.opencontainers.image.description="Batch analysis of Kubernetes error logs"
# uid/gid 10001 match the pod securityContext; /data (the volume) and /tmp (an emptyDir) are the
# only places written at run time, so the root filesystem can be read-only.
RUN groupadd --system --gid 10001 analyzer \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin analyzer \
    && mkdir -p /data/registry /data/exports \
    && chown -R 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp \
    HOME=/tmp \
    LOG_FORMAT=json \
    REGISTRY_DIR=/data/registry \
    EXPORT_DIR=/data/exports
WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
CMD ["python3", "scripts/regular_phase.py"]
