"""What one get_or_compute did, as the store itself observed it: `get_or_compute` hands back only the frame, so a
read-mix run gives the store, for the run's duration, instruments that also copy each observing thread's reads,
inserts, lock waits and insert errors into its `Observed`, then records them as usual (same registry, same series).

Threads that are not observing (the service's other requests on a shared store) record exactly as before.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from featurestore.instruments import Instruments
from featurestore.store import FeatureStore


@dataclass
class Observed:
    """One operation's observations: reads and inserts as (backend, ms), lock waits in ms, insert error kinds."""

    reads: list[tuple[str, float]] = field(default_factory=list)
    inserts: list[tuple[str, float]] = field(default_factory=list)
    lock_waits: list[float] = field(default_factory=list)
    insert_errors: list[str] = field(default_factory=list)


class ObservedInstruments(Instruments):
    """`instruments`' own registry, families and symbol cap, with an observing thread's calls copied out."""

    def __init__(self, instruments: Instruments) -> None:
        shared = {item.name: getattr(instruments, item.name) for item in dataclasses.fields(instruments) if item.init}
        super().__init__(**shared)
        self.inner = instruments
        self._local = threading.local()

    @contextmanager
    def observe(self) -> Iterator[Observed]:
        observed = Observed()
        self._local.observed = observed
        try:
            yield observed
        finally:
            self._local.observed = None

    def _observed(self) -> Observed | None:
        observed: Observed | None = getattr(self._local, "observed", None)
        return observed

    def observe_insert(self, backend: str, symbol: str, ms: float) -> None:
        if (observed := self._observed()) is not None:
            observed.inserts.append((backend, ms))
        super().observe_insert(backend, symbol, ms)

    def observe_lock_wait(self, symbol: str, ms: float) -> None:
        if (observed := self._observed()) is not None:
            observed.lock_waits.append(ms)
        super().observe_lock_wait(symbol, ms)

    def observe_read(self, backend: str, symbol: str, ms: float) -> None:
        if (observed := self._observed()) is not None:
            observed.reads.append((backend, ms))
        super().observe_read(backend, symbol, ms)

    def count_insert_error(self, backend: str, error: str) -> None:
        if (observed := self._observed()) is not None:
            observed.insert_errors.append(error)
        super().count_insert_error(backend, error)


@contextmanager
def observing(store: FeatureStore) -> Iterator[ObservedInstruments]:
    """Give `store` ObservedInstruments over its own until the block ends."""
    observed = ObservedInstruments(store.instruments)
    store.instruments = observed
    try:
        yield observed
    finally:
        store.instruments = observed.inner
