"""run_load: start the workers (threads sharing one store, or processes with a store each) behind a barrier, run them
for the duration, gather their observations, and count duplicates in the manifest afterwards."""

from __future__ import annotations

import gc
import multiprocessing
import multiprocessing.context
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from queue import Empty
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from featurestore.instruments import Instruments
from featurestore.instruments import build as build_instruments
from featurestore.loadtest.config import LoadConfig
from featurestore.loadtest.result import LoadResult, Samples
from featurestore.loadtest.worker import SampleQueue, Waitable, WorkerLog, open_store, run_loop, warm_up
from featurestore.manifest.postgres import behind_pooler
from featurestore.metrics import BACKEND_POSTGRESQL
from featurestore.store import FeatureStore

STARTUP_TIMEOUT_S = 120.0  # every worker opened its store and warmed up, or the run fails
FINISH_GRACE_S = 60.0  # past the duration: workers are told to stop, then stopped
PROGRESS_INTERVAL_S = 1.0
# The parent keeps a connection for counting duplicates; other sessions may come and go during the run.
SPARE_CONNECTIONS = 3

Progress = Callable[[str], None]


def run_load(
    config: LoadConfig,
    *,
    store: FeatureStore | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    instruments: Instruments | None = None,
    connection_wait_s: float = 0.0,
) -> LoadResult:
    """Run the workload of `config` and return what it measured.

    With `store` (thread mode) the workers publish through it, so its instruments record the run live; without one the
    run opens a store on `instruments` (a fresh registry by default; `Instruments.disabled()` measures without metrics).
    In process mode each worker opens its own store and streams its observations back; the parent records them into
    `instruments` (default: `store.instruments` when a store is given) every ~0.5 s. `progress` receives a line about
    once a second; setting `stop` ends the run early. On PostgreSQL the run first checks that the server can take
    its connections, waiting up to `connection_wait_s` for other sessions to free them (NotEnoughConnections).
    """
    stop = stop if stop is not None else threading.Event()
    if instruments is None and store is not None:
        instruments = store.instruments
    run_id = uuid.uuid4().hex[:12]
    if config.backend == BACKEND_POSTGRESQL and (store is None or config.processes):
        assert config.dsn is not None
        # Threads through a given store use its pool; everything else opens one connection per worker.
        needed = config.connections() + SPARE_CONNECTIONS
        check_connections(config.dsn, needed, wait_s=connection_wait_s, progress=progress)
    with _cache_dir(config) as cache_dir:
        if config.processes:
            return _run_processes(config, run_id, cache_dir, store, instruments, progress, stop)
        return _run_threads(config, run_id, cache_dir, store, instruments, progress, stop)


@contextmanager
def _cache_dir(config: LoadConfig) -> Iterator[Path]:
    if config.cache_dir is not None:
        config.cache_dir.mkdir(parents=True, exist_ok=True)
        yield config.cache_dir
        return
    folder = Path(tempfile.mkdtemp(prefix="featurestore-loadtest-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class NotEnoughConnections(RuntimeError):
    """PostgreSQL cannot take the run's connections (max_connections minus what other sessions use)."""


def check_connections(dsn: str, needed: int, *, wait_s: float = 0.0, progress: Progress | None = None) -> None:
    """Return once PostgreSQL can take `needed` more client connections; NotEnoughConnections after `wait_s`.

    Through a connection pooler (detected as the store does) the run's client connections are the pooler's, which
    shares its own server pool among them: max_connections does not bound them, so there is nothing to wait for.
    """
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        with psycopg.connect(dsn, connect_timeout=5, autocommit=True, prepare_threshold=None) as conn:
            if behind_pooler(conn):
                if progress is not None:
                    progress(
                        f"loadtest: {dsn_host(dsn)} is a connection pooler: the run's {needed} client connections "
                        "share its server pool, so PostgreSQL's max_connections is not checked"
                    )
                return
            row = conn.execute(
                "SELECT current_setting('max_connections')::int,"
                " current_setting('superuser_reserved_connections')::int,"
                " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
            ).fetchone()
        assert row is not None
        limit, reserved, used = int(row[0]), int(row[1]), int(row[2])
        free = limit - reserved - used
        if needed <= free:
            return
        if time.monotonic() >= deadline:
            raise NotEnoughConnections(
                f"the run needs {needed} PostgreSQL connections but only {free} are free (max_connections {limit}, "
                f"{reserved} reserved, {used} in use by other sessions): lower --workers, raise max_connections, or "
                "run through a connection pooler in transaction mode (PgBouncer; see the README's production section)"
            )
        if progress is not None and not told:
            progress(f"loadtest: waiting up to {wait_s:g} s for {needed} free PostgreSQL connections ({free} now)")
            told = True
        time.sleep(2.0)


def dsn_host(dsn: str) -> str:
    params = conninfo_to_dict(dsn)
    return f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"


class _Ticker:
    def __init__(self, progress: Progress | None, config: LoadConfig, started: float) -> None:
        self.progress, self.config, self.started = progress, config, started
        self.next_at = started + PROGRESS_INTERVAL_S

    def __call__(self, operations: int, errors: int) -> None:
        now = time.monotonic()
        if self.progress is None or now < self.next_at:
            return
        self.next_at = now + PROGRESS_INTERVAL_S
        elapsed = now - self.started
        rate = operations / max(elapsed, 1e-9)
        config = self.config
        self.progress(
            f"loadtest {config.lock} lock, {config.workers} workers: {elapsed:5.1f}/{config.duration_s:g} s, "
            f"{operations} ops, {errors} errors, {rate:.0f} ops/s"
        )


def _count_duplicates(store: FeatureStore) -> int:
    return store.count_duplicates()


def _run_threads(
    config: LoadConfig,
    run_id: str,
    cache_dir: Path,
    store: FeatureStore | None,
    instruments: Instruments | None,
    progress: Progress | None,
    stop: threading.Event,
) -> LoadResult:
    owned = store is None
    if store is None:
        # One connection per thread: the run measures lock contention, not waits for a pooled connection.
        instruments = instruments if instruments is not None else build_instruments()
        store = open_store(config, cache_dir, pool_size=config.workers, instruments=instruments)
    try:
        return _run_thread_workers(config, run_id, store, progress, stop)
    finally:
        if owned:
            store.close()


def _run_thread_workers(
    config: LoadConfig, run_id: str, store: FeatureStore, progress: Progress | None, stop: threading.Event
) -> LoadResult:
    # The workers watch their own event, so a stop never reaches back into the caller's.
    halt = threading.Event()
    logs = [WorkerLog(worker) for worker in range(config.workers)]
    ends = [0.0] * config.workers
    failures: list[BaseException] = []
    barrier = threading.Barrier(config.workers + 1)

    def work(worker: int) -> None:
        try:
            warm_up(store, config, run_id, worker)
            try:
                barrier.wait(STARTUP_TIMEOUT_S)
            except threading.BrokenBarrierError:
                return
            end = time.monotonic() + config.duration_s
            run_loop(store, config, run_id, worker, end, halt, logs[worker])
        except BaseException as exc:
            failures.append(exc)
            barrier.abort()
        finally:
            ends[worker] = time.monotonic()

    threads = [
        threading.Thread(target=work, args=(worker,), name=f"loadtest-{worker}", daemon=True)
        for worker in range(config.workers)
    ]
    for thread in threads:
        thread.start()
    try:
        barrier.wait(STARTUP_TIMEOUT_S)
    except threading.BrokenBarrierError:
        halt.set()
        for thread in threads:
            thread.join(10)
        reason = repr(failures[0]) if failures else "the start barrier timed out"
        raise RuntimeError(f"load workers did not start: {reason}") from None
    started, cpu = time.monotonic(), time.process_time()
    tick = _Ticker(progress, config, started)
    hard_stop = started + config.duration_s + FINISH_GRACE_S
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
            tick(sum(log.samples.operations for log in logs), sum(sum(log.samples.errors.values()) for log in logs))
            if stop.is_set() or time.monotonic() > hard_stop:
                halt.set()
    cpu = time.process_time() - cpu
    if failures:
        raise RuntimeError(f"a load worker failed: {failures[0]!r}") from failures[0]
    samples = Samples()
    for log in logs:
        samples.extend(log.samples)
    return LoadResult(
        config=config,
        samples=samples,
        duration_s=max(ends) - started,
        per_worker_operations=tuple(log.samples.operations for log in logs),
        duplicates=_count_duplicates(store),
        client_cpu_s=cpu,
    )


def _process_main(
    config: LoadConfig,
    run_id: str,
    cache_dir: Path,
    worker: int,
    queue: SampleQueue,
    start: Waitable,
    halt: Waitable,
) -> None:
    """Entry point of a worker process: its own store (one connection), then the same loop as a thread."""
    try:
        # One shared cache folder, as in production: the DuckDB fallback file in it is per process already.
        store = open_store(config, cache_dir, pool_size=config.pool_size, instruments=build_instruments())
    except BaseException as exc:
        queue.put(("failed", worker, f"{type(exc).__name__}: {exc}"))
        return
    try:
        warm_up(store, config, run_id, worker)
        # Everything alive now (the heap inherited from the parent, imports, the store) is long-lived: leave it out
        # of the collector's passes, or the first full collections inside the measured loop walk it all (and copy
        # its pages, shared with the parent since the fork) and count as the publishes' client CPU.
        gc.freeze()
        queue.put(("ready", worker))
        if not start.wait(STARTUP_TIMEOUT_S) or halt.is_set():
            return
        log = WorkerLog(worker, queue)
        cpu = time.process_time()
        run_loop(store, config, run_id, worker, time.monotonic() + config.duration_s, halt, log)
        log.flush()
        queue.put(("done", worker, log.samples.operations, time.monotonic(), time.process_time() - cpu))
    except BaseException as exc:
        queue.put(("failed", worker, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        store.close()


class _Collector:
    """The parent's side of process mode: pools batches and replays them into the parent's instruments."""

    def __init__(self, config: LoadConfig, instruments: Instruments | None) -> None:
        self.config = config
        self.instruments = instruments
        self.samples = Samples()
        self.per_worker = [0] * config.workers
        self.ready: set[int] = set()
        self.cpu_s = 0.0
        self.ends: dict[int, float] = {}
        self.failures: dict[int, str] = {}

    @property
    def finished(self) -> int:
        return len(self.ends.keys() | self.failures.keys())

    def notice_exits(self, processes: list[Any], queue: Any) -> None:
        """A worker that exited without saying it was done failed (killed, crashed in C, ...)."""
        exited = {worker: p.exitcode for worker, p in enumerate(processes) if p.exitcode is not None}
        exited = {worker: code for worker, code in exited.items() if worker not in self.ends}
        if exited:
            _drain(queue, self, seconds=0.2)  # an exited process has flushed its messages into the pipe
        for worker, code in exited.items():
            if worker not in self.ends:
                self.failures.setdefault(worker, f"exited with code {code}")

    def reasons(self) -> str:
        return "; ".join(f"worker {worker}: {reason}" for worker, reason in sorted(self.failures.items()))

    def handle(self, message: tuple[Any, ...]) -> None:
        kind, worker = message[0], message[1]
        if kind == "batch":
            _, _, ok, errors, not_inserted, lookups = message
            self._record(worker, ok, errors, not_inserted)
            self._record_lookups(worker, lookups)
        elif kind == "ready":
            self.ready.add(worker)
        elif kind == "done":
            self.ends[worker] = message[3]
            self.cpu_s += message[4]
        elif kind == "failed":
            self.failures.setdefault(worker, message[2])

    def _record(
        self,
        worker: int,
        ok: list[tuple[str, str, float, float, float]],
        errors: list[tuple[str, str, str]],
        not_inserted: int,
    ) -> None:
        samples, instruments = self.samples, self.instruments
        if self.config.read_fraction == 0:
            self.per_worker[worker] += len(ok)
        samples.not_inserted += not_inserted
        for symbol, backend, insert_ms, lock_wait_ms, publish_ms in ok:
            samples.insert_ms.append(insert_ms)
            samples.publish_ms.append(publish_ms)
            samples.backends[backend] += 1
            if backend == BACKEND_POSTGRESQL:  # as the store does: DuckDB inserts take no advisory lock
                samples.lock_wait_ms.append(lock_wait_ms)
            if instruments is not None:
                instruments.observe_insert(backend, symbol, insert_ms)
                if backend == BACKEND_POSTGRESQL:
                    instruments.observe_lock_wait(symbol, lock_wait_ms)
        for _symbol, kind, message in errors:
            samples.add_error(kind, message)
            if instruments is not None:
                instruments.count_insert_error(self.config.backend, kind)

    def _record_lookups(self, worker: int, lookups: list[tuple[str, bool, list[tuple[str, float]]]]) -> None:
        samples, instruments = self.samples, self.instruments
        if self.config.read_fraction > 0:
            self.per_worker[worker] += len(lookups)
        for symbol, hit, reads in lookups:
            if hit:
                samples.hits += 1
            else:
                samples.misses += 1
            samples.read_ms.extend(ms for _backend, ms in reads)
            if instruments is not None:
                for backend, ms in reads:
                    instruments.observe_read(backend, symbol, ms)
                instruments.record_lookup(symbol, hit=hit)


def _start_method() -> str:
    # fork is only safe from a single-threaded parent (a lock held by another thread stays held in the child);
    # otherwise (the service, a pool's threads) a clean forkserver forks the workers.
    return "fork" if threading.active_count() == 1 else "forkserver"


def _run_processes(
    config: LoadConfig,
    run_id: str,
    cache_dir: Path,
    store: FeatureStore | None,
    instruments: Instruments | None,
    progress: Progress | None,
    stop: threading.Event,
) -> LoadResult:
    if store is None:
        # Create the manifest tables once, before any worker races to; closed again before forking.
        open_store(config, cache_dir, pool_size=1, instruments=Instruments.disabled()).close()
    context: Any = multiprocessing.get_context(_start_method())
    if isinstance(context, multiprocessing.context.ForkServerContext):
        context.set_forkserver_preload([__name__])
    queue = context.Queue()
    start = context.Event()
    halt = context.Event()
    processes = [
        context.Process(
            target=_process_main,
            args=(config, run_id, cache_dir, worker, queue, start, halt),
            name=f"loadtest-{worker}",
            daemon=True,
        )
        for worker in range(config.workers)
    ]
    collector = _Collector(config, instruments)
    launched: list[Any] = []
    try:
        for process in processes:
            process.start()
            launched.append(process)
        # The start barrier: every worker has opened its store and warmed up, or the run fails saying why.
        give_up = time.monotonic() + STARTUP_TIMEOUT_S
        while len(collector.ready) < config.workers and not collector.failures:
            try:
                collector.handle(queue.get(timeout=0.25))
            except Empty:
                collector.notice_exits(launched, queue)
                if time.monotonic() > give_up or stop.is_set():
                    collector.failures.setdefault(-1, "the start barrier timed out or the run was stopped")
        if collector.failures:
            _drain(queue, collector, seconds=1.0)
            raise RuntimeError(f"load workers did not start: {collector.reasons()}")
        start.set()
        started = time.monotonic()
        tick = _Ticker(progress, config, started)
        hard_stop = started + config.duration_s + FINISH_GRACE_S
        while collector.finished < config.workers:
            if stop.is_set() or time.monotonic() > hard_stop:
                halt.set()
            try:
                collector.handle(queue.get(timeout=0.25))
            except Empty:
                collector.notice_exits(launched, queue)
                if time.monotonic() > hard_stop + FINISH_GRACE_S:
                    break
            tick(collector.samples.operations, sum(collector.samples.errors.values()))
        _drain(queue, collector, seconds=0.0)
        for worker in range(config.workers):
            if worker not in collector.ends:
                collector.failures.setdefault(worker, "did not finish within the grace period")
    finally:
        halt.set()
        for process in launched:
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)
        queue.close()
        queue.join_thread()
    if collector.failures:
        raise RuntimeError(f"load workers failed: {collector.reasons()}")
    if store is not None:
        duplicates = _count_duplicates(store)
    else:
        with open_store(config, cache_dir, pool_size=1, instruments=Instruments.disabled()) as counter:
            duplicates = _count_duplicates(counter)
    return LoadResult(
        config=config,
        samples=collector.samples,
        duration_s=max(collector.ends.values()) - started,
        per_worker_operations=tuple(collector.per_worker),
        duplicates=duplicates,
        client_cpu_s=collector.cpu_s,
    )


def _drain(queue: Any, collector: _Collector, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            collector.handle(queue.get(timeout=max(deadline - time.monotonic(), 0.01)))
        except Empty:
            if time.monotonic() >= deadline:
                return
