"""What one running app holds (built by the lifespan, handed to every request as `request.state.service`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp

from featurestore.exposition import TextExposition
from featurestore.metrics import Instruments
from featurestore.settings import FeatureStoreSettings
from featurestore.store import FeatureStore
from service.errors import ApiError
from service.health import HealthChecker
from service.redact import Redactor
from service.settings import ServiceSettings
from service.window import SampleRing
from slos.models import SLO

if TYPE_CHECKING:
    from service.loadtest import LoadRunner


@dataclass
class Service:
    settings: ServiceSettings
    store_settings: FeatureStoreSettings
    slos: tuple[SLO, ...]
    redactor: Redactor
    instruments: Instruments
    store: FeatureStore
    ring: SampleRing
    health: HealthChecker
    loads: LoadRunner
    metrics_app: ASGIApp  # prometheus_client's app, for `name[]` filters
    exposition: TextExposition  # the registry's exposition writer (it caches each child's label text)
    started_at: float  # monotonic

    def json(self, content: Any, status: int = 200) -> JSONResponse:
        """A JSON response with every string redacted."""
        return JSONResponse(self.redactor.scrub(content), status_code=status)


def service_of(request: Request) -> Service:
    """The app's resources, or 503 while the lifespan has not started them (or has closed them)."""
    service = getattr(request.state, "service", None)
    if service is None:
        raise ApiError(503, "the service is starting or stopping; retry in a moment")
    assert isinstance(service, Service)
    return service
