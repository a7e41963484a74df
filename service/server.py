"""How `python -m service` runs uvicorn: the server's limits, from ServiceSettings.

    max_header_bytes      h11_max_incomplete_event_size: a request line plus headers over it gets 400
    keep_alive_timeout_s  timeout_keep_alive: an idle kept-alive connection is closed
    max_connections       limit_concurrency: beyond that many connections or requests in progress, 503
    request_timeout_s     RequestDeadline (below): a request must arrive whole in time, or its connection is closed

uvicorn has no timeout for receiving a request (uvicorn#157 asks for one; open in 0.55): `timeout_keep_alive`
starts only after a response and stops at the next byte, so a client that connects and sends nothing, or trickles a
request a byte at a time, holds its connection (and a place under `limit_concurrency`) for good. RequestDeadline adds
it on uvicorn's h11 protocol, the one whose hooks it extends: `connection_made`, `data_received`, `handle_events`,
`connection_lost` and the `cycle` of the request in progress (uvicorn 0.30 to 0.55; tests/service/test_server.py
holds them against the installed uvicorn).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.settings import ServiceSettings

log = logging.getLogger("service")


class RequestDeadline(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request to arrive: its line, headers and body.

    The clock starts when the connection opens, and on a kept-alive connection at the next request's first byte; it
    stops once the request has arrived whole (the app then takes the time it takes). When it runs out the connection
    is closed: a request whose body was still coming sees the client disconnect (service/errors.py logs it at INFO).
    """

    timeout_s = 10.0  # set per server by request_deadline()
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self._between_requests():
            self._arm()
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if not self._between_requests() and not self.cycle.more_body:
            self._disarm()  # the request arrived whole

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.info("closed the connection of %s: no whole request within %g s", client, self.timeout_s)
        self.transport.close()


def request_deadline(timeout_s: float) -> type[RequestDeadline]:
    """RequestDeadline with this server's timeout (uvicorn builds the protocol from a class and its own Config)."""
    return type("RequestDeadline", (RequestDeadline,), {"timeout_s": timeout_s})


def server_config(app: Any, settings: ServiceSettings, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's Config for the service: the settings' host, port, log level and limits (`options` pass through)."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_level=settings.log_level,
        http=request_deadline(settings.request_timeout_s),
        ws="none",
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_keep_alive=settings.keep_alive_timeout_s,
        limit_concurrency=settings.max_connections,
        **options,
    )
