# The monitoring service: python -m service (Starlette + uvicorn) on port 8000, as a non-root user.
# Build: docker build -t featurestore-monitoring:<version in pyproject.toml> .   (the tag rendered/kubernetes/ runs,
# with probes on the same endpoints).
# The base: python:3.11.16-slim (Debian trixie), pinned by the digest of its multi-platform index so that a rebuild
# gets the same bytes. To bump it, see "The image" in the deployment docs (docker buildx imagetools inspect).
FROM python:3.11.16-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A numeric uid, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
RUN groupadd --system --gid 10001 featurestore \
    && useradd --system --uid 10001 --gid featurestore --create-home --home-dir /home/featurestore featurestore

WORKDIR /app
# The dependencies first, each at the version and with the hashes of the lock (make lock writes it from
# pyproject.toml), setuptools for the build below included: a layer that changes only when the lock does.
COPY requirements/image.txt ./requirements/image.txt
RUN pip install --require-hashes --no-deps -r requirements/image.txt
# Then the project alone, built with the locked setuptools (no isolated build fetching an unpinned one). Only what
# that needs; .dockerignore keeps the venv, caches, tests and local state out of the context.
COPY pyproject.toml README.md ./
COPY featurestore ./featurestore
COPY slos ./slos
COPY service ./service
RUN pip install --no-deps --no-build-isolation . && rm -rf /app/build

USER 10001:10001
WORKDIR /home/featurestore
# The DuckDB manifest and the Parquet files; mount a volume here to keep them across restarts.
ENV FEATURESTORE_CACHE_DIR=/home/featurestore/.feature_cache

EXPOSE 8000
# slim images have no curl: the interpreter does the probe.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/api/v1/monitoring/health/live', timeout=2).status == 200 else 1)"]

CMD ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
