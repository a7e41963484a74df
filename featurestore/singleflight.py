"""Compute once: the threads of a process share one computation per key, and processes on any machine take turns
through a lease row in PostgreSQL (`compute_leases`).

A lease is claimed in one statement (insert, or take over a row whose holder stopped renewing it), sent with the read
of the key's manifest row in one round trip (granted or not, the caller learns whether the frame was published
meanwhile), renewed by a background thread every ttl/3 while the frame is computed, and deleted when the frame is
published. Waiters claim again with a backoff and read the frame as soon as its row appears.

Why a lease and not a session advisory lock held on a dedicated connection: the lock needs one extra connection per
*waiting* process, on top of its pool. 64 workers missing the same key at once then hold 128 connections, past
PostgreSQL's default max_connections of 100 (this machine's setting), and the race test fails with "too many
clients". A lease pins no connection; a worker killed mid-compute frees its key after lease_ttl_s instead of at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from featurestore.errors import ComputeTimeout, FeatureStoreError
from featurestore.keys import FrameKey
from featurestore.manifest.base import LeaseClaim, ManifestEntry

log = logging.getLogger(__name__)

FIRST_POLL_S = 0.02
LAST_POLL_S = 0.5


class LeaseBackend(Protocol):
    """Where leases live. `claim_lease` returns None when leases are unavailable (PostgreSQL down), else the claim
    and the key's manifest row read after it."""

    def claim_lease(self, key: FrameKey, owner: str, ttl_s: float) -> LeaseClaim | None: ...

    def renew_leases(self, owner: str, ttl_s: float) -> None: ...

    def release_lease(self, key: FrameKey, owner: str) -> None: ...


class KeyedLocks:
    """One lock per key, created on demand and dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[FrameKey, tuple[threading.Lock, int]] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, key: FrameKey) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def users(self, key: FrameKey) -> int:
        """How many callers hold or wait for `key`."""
        with self._guard:
            return self._locks.get(key, (None, 0))[1]

    def __len__(self) -> int:
        return len(self._locks)


@dataclass(frozen=True)
class Turn:
    """`leased`: this caller computes (and publishes) the frame. `entry`: a row someone else published meanwhile."""

    leased: bool
    entry: ManifestEntry | None


class SingleFlight:
    """Cross-process turns for computing a key. Without a lease backend every caller computes (one process)."""

    def __init__(self, leases: LeaseBackend | None, *, owner: str, ttl_s: float, wait_s: float) -> None:
        self._leases = leases
        self.owner = owner
        self._ttl_s = ttl_s
        self._wait_s = wait_s
        self._held: set[FrameKey] = set()
        self._held_lock = threading.Lock()
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None

    @contextmanager
    def turn(self, key: FrameKey, stale: ManifestEntry | None) -> Iterator[Turn]:
        """Wait until this caller may compute `key`, or until a row other than `stale` is published."""
        if self._leases is None:
            yield Turn(True, None)
            return
        deadline = time.monotonic() + self._wait_s
        delay = FIRST_POLL_S
        while True:
            claim = self._leases.claim_lease(key, self.owner, self._ttl_s)
            if claim is None:
                yield Turn(True, None)  # PostgreSQL is down: no one to coordinate with
                return
            if claim.claimed:
                break
            if claim.entry is not None and claim.entry != stale:
                yield Turn(False, claim.entry)
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ComputeTimeout(
                    f"another worker has been computing {key.symbol}/{key.feature} for more than {self._wait_s:g} s "
                    "(compute_lease_s)"
                )
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, LAST_POLL_S)
        self._hold(key)
        try:
            # Read with the claim: published between our miss and our claim?
            yield Turn(True, claim.entry if claim.entry != stale else None)
        finally:
            self._release(key)

    def _hold(self, key: FrameKey) -> None:
        with self._held_lock:
            self._held.add(key)
            if self._keeper is None:
                self._keeper = threading.Thread(target=self._renew, name="featurestore-leases", daemon=True)
                self._keeper.start()

    def _release(self, key: FrameKey) -> None:
        with self._held_lock:
            self._held.discard(key)
        assert self._leases is not None
        try:
            self._leases.release_lease(key, self.owner)
        except FeatureStoreError as exc:
            log.warning("could not release the compute lease of %s (it expires by itself): %s", key, exc)

    def _renew(self) -> None:
        assert self._leases is not None
        while not self._stop.wait(self._ttl_s / 3):
            with self._held_lock:
                busy = bool(self._held)
            if not busy:
                continue
            try:
                self._leases.renew_leases(self.owner, self._ttl_s)
            except FeatureStoreError as exc:
                log.warning("renewing compute leases failed: %s", exc)

    def close(self) -> None:
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join(timeout=5.0)
