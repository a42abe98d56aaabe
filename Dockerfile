# syntax=docker/dockerfile:1
#
# connectus-worker image: one image, four roles chosen by the command
# (ENTRYPOINT is the `connectus` console script):
#   worker (default) | serve | sandbox | demo
#
# Build:  docker build -t connectus-worker:0.1.0 .
# Checked offline by tests/unit/test_deploy_files.py (and hadolint).
#
# The base is pinned to a full patch tag; in CI pin it further by digest
# (python:3.11.13-slim-bookworm@sha256:...) and let a bot bump it.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------- builder ---
FROM ${PYTHON_IMAGE} AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# A self-contained virtualenv that the runtime stage copies as a whole.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# The build context is an allow-list (.dockerignore): pyproject, README, the
# lock file and the package directories only.
COPY . /src

# Dependencies first, exactly as pinned in requirements.lock (`make lock`), each
# download checked against its hash: a build never resolves newer versions and
# a tampered file fails it. Then a wheel of the project itself, installed with
# --no-deps, so nothing unpinned gets in. pip/setuptools are removed from the
# venv afterwards: the runtime image carries no build or install tooling.
RUN pip install --require-hashes --no-deps -r requirements.lock \
 && pip wheel --no-deps --wheel-dir /wheels . \
 && pip install --no-deps /wheels/*.whl \
 && pip uninstall --yes pip setuptools \
 && connectus --help > /dev/null

# ---------------------------------------------------------------- runtime ---
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="connectus-worker" \
      org.opencontainers.image.description="Dramatiq + Redis delivery worker for Connectus (worker, serve, sandbox, demo)"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    WORKER_METRICS_PORT=9191 \
    WORKER_METRICS_HOST=0.0.0.0

# Fixed, non-root UID/GID so Kubernetes `runAsUser`/`fsGroup` and volume
# permissions can rely on it.
RUN groupadd --system --gid 10001 connectus \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin connectus

COPY --from=builder /opt/venv /opt/venv
# The sandbox and demo roles need the development tooling, which the wheel
# leaves out (pyproject's package list; connectus_worker/cli/devtools_path.py): copied beside
# the venv and put on PYTHONPATH. The worker and serve roles never import it.
COPY --from=builder /src/sandbox /opt/connectus-dev/sandbox
COPY --from=builder /src/devtools /opt/connectus-dev/devtools
ENV PYTHONPATH=/opt/connectus-dev

WORKDIR /tmp
USER 10001:10001

# Worker metrics/health port, HTTP service port, sandbox port.
EXPOSE 9191 8080 8081

# Liveness for the default role (worker: /healthz on WORKER_METRICS_PORT).
# Other roles set HEALTHCHECK_URL (compose does) so the same check fits them.
# Python + urllib, so the image needs no curl; any error or HTTP >= 400 exits 1.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ.get('HEALTHCHECK_URL') or 'http://127.0.0.1:%s/healthz' % os.environ.get('WORKER_METRICS_PORT', '9191'), timeout=4)"]

# The supervisor drains on SIGTERM: in-flight sends finish within
# WORKER_SHUTDOWN_GRACE_S, the rest go back to the queue.
STOPSIGNAL SIGTERM

ENTRYPOINT ["connectus"]
CMD ["worker"]
