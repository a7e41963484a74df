"""What one running app holds (built by the lifespan, handed to every request as `request.state.service`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from featurestore.instruments import Instruments
from featurestore.settings import FeatureStoreSettings
from service.errors import ApiError
from service.exporter import Exporter
from service.health import HealthChecker
from service.load_runner import LoadRunner
from service.redact import Redactor
from service.settings import ServiceSettings
from service.store_handle import ServiceStore
from service.window import SampleRing
from slos.models import SLO


@dataclass
class Service:
    settings: ServiceSettings
    store_settings: FeatureStoreSettings
    slos: tuple[SLO, ...]
    redactor: Redactor
    instruments: Instruments
    store: ServiceStore
    ring: SampleRing
    health: HealthChecker
    loads: LoadRunner
    exporter: Exporter  # what /metrics serves: this process's registry, or the metrics folder's aggregate
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
