"""Names shared by the service, its clients, the generators and the dev stack, written once (sloth keeps its in
`pkg/common/conventions`): the API prefix and every route path, the port the service listens on, and the ports of
the Prometheus and Alertmanager it is paired with (their upstream defaults).

Plain constants, no imports: the generators and the load generator read them without starlette or prometheus_client.
The Dockerfile's HEALTHCHECK cannot import Python; tests/deploy/test_dockerfile.py holds it to `LIVE_PATH` and
`DEFAULT_PORT`. Metric and label names live in featurestore/metrics.py.
"""

from __future__ import annotations

API_PREFIX = "/api/v1/monitoring"  # the guide's prefix; GET on it is the index of the endpoints
HEALTH_PATH = f"{API_PREFIX}/health"
READY_PATH = f"{API_PREFIX}/health/ready"  # the readiness probe (Kubernetes, the dev stack)
LIVE_PATH = f"{API_PREFIX}/health/live"  # the liveness probe (Kubernetes, the Dockerfile's HEALTHCHECK)
SLO_PATH = f"{API_PREFIX}/slo"
PERFORMANCE_PATH = f"{API_PREFIX}/performance"
METRICS_PATH = f"{API_PREFIX}/metrics"  # where Prometheus scrapes
LOAD_TEST_PATH = f"{API_PREFIX}/test/load"
METRICS_ROOT_PATH = "/metrics"  # the usual scrape path, serving what METRICS_PATH serves

DEFAULT_PORT = 8000  # python -m service, the image, the Kubernetes Deployment and make stack
PROMETHEUS_PORT = 9090  # Prometheus's own default (make stack)
ALERTMANAGER_PORT = 9093  # Alertmanager's own default: the rendered prometheus.yml's alerting target, make stack
