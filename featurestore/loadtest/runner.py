"""run_load: start the workers (threads sharing one store, or processes with a store each) behind a barrier, run them
for the duration, gather their observations, and count duplicates in the manifest afterwards."""

from __future__ import annotations

import gc
import multiprocessing
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from featurestore.instruments import Instruments
from featurestore.instruments import build as build_instruments
from featurestore.loadtest.config import LoadConfig
from featurestore.loadtest.cpu import CpuTimes, machine_cpu_times, since
from featurestore.loadtest.messages import Batch, Done, Failed, Message, Ready
from featurestore.loadtest.observed import ObservedInstruments, observing
from featurestore.loadtest.result import LoadResult, Samples
from featurestore.loadtest.worker import (
    SampleQueue,
    StoreFactory,
    Waitable,
    WorkerLog,
    open_store,
    run_loop,
    warm_up,
)
from featurestore.manifest.postgres import behind_pooler
from featurestore.metrics import BACKEND_POSTGRESQL, takes_advisory_lock
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
    open_stores: StoreFactory = open_store,
    label: str = "",
) -> LoadResult:
    """Run the workload of `config` and return what it measured.

    With `store` (thread mode) the workers publish through it, so its instruments record the run live; without one the
    run opens a store on `instruments` (a fresh registry by default; `Instruments.disabled()` measures without metrics).
    In process mode each worker opens its own store and streams its observations back; the parent records them into
    `instruments` (default: `store.instruments` when a store is given) every ~0.5 s. `progress` receives a line about
    once a second; setting `stop` ends the run early. On PostgreSQL the run first checks that the server can take
    its connections, waiting up to `connection_wait_s` for other sessions to free them (NotEnoughConnections).
    `open_stores` opens the run's stores (a benchmark passes its own, picklable); `label` prefixes progress lines.
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
        run, tick = _Run(config, run_id, cache_dir, open_stores), _Ticker(progress, config, label)
        if config.processes:
            return _run_processes(run, tick, store, instruments, stop)
        return _run_threads(run, tick, store, instruments, stop)


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
                "run through a connection pooler in transaction mode (PgBouncer; see docs/deployment.md)"
            )
        if progress is not None and not told:
            progress(f"loadtest: waiting up to {wait_s:g} s for {needed} free PostgreSQL connections ({free} now)")
            told = True
        time.sleep(2.0)


def dsn_host(dsn: str) -> str:
    params = conninfo_to_dict(dsn)
    return f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"


class _Ticker:
    def __init__(self, progress: Progress | None, config: LoadConfig, label: str) -> None:
        self.progress, self.config, self.label = progress, config, label
        self.started = self.next_at = 0.0

    def start(self) -> None:
        self.started = time.monotonic()
        self.next_at = self.started + PROGRESS_INTERVAL_S

    def __call__(self, operations: int, errors: int) -> None:
        now = time.monotonic()
        if self.progress is None or now < self.next_at:
            return
        self.next_at = now + PROGRESS_INTERVAL_S
        elapsed = now - self.started
        rate = operations / max(elapsed, 1e-9)
        config = self.config
        self.progress(
            f"loadtest {self.label}{config.workers} workers: {elapsed:5.1f}/{config.duration_s:g} s, "
            f"{operations} ops, {errors} errors, {rate:.0f} ops/s"
        )


@dataclass(frozen=True)
class _Run:
    """What every worker of one run shares (a process worker gets it pickled)."""

    config: LoadConfig
    run_id: str
    cache_dir: Path
    open_stores: StoreFactory


def _observed(store: FeatureStore, config: LoadConfig) -> AbstractContextManager[ObservedInstruments | None]:
    """A read mix reads what each get_or_compute did off the store's own observations (observed.py)."""
    return observing(store) if config.read_fraction > 0 else nullcontext()


def _run_threads(
    run: _Run, tick: _Ticker, store: FeatureStore | None, instruments: Instruments | None, stop: threading.Event
) -> LoadResult:
    owned = store is None
    if store is None:
        # One connection per thread: the run measures lock contention, not waits for a pooled connection.
        instruments = instruments if instruments is not None else build_instruments()
        store = run.open_stores(run.config, run.cache_dir, pool_size=run.config.workers, instruments=instruments)
    try:
        with _observed(store, run.config):
            return _run_thread_workers(run, tick, store, stop)
    finally:
        if owned:
            store.close()


def _run_thread_workers(run: _Run, tick: _Ticker, store: FeatureStore, stop: threading.Event) -> LoadResult:
    config = run.config
    # The workers watch their own event, so a stop never reaches back into the caller's.
    halt = threading.Event()
    logs = [WorkerLog(worker) for worker in range(config.workers)]
    ends = [0.0] * config.workers
    failures: list[BaseException] = []
    barrier = threading.Barrier(config.workers + 1)

    def work(worker: int) -> None:
        try:
            warm_up(store, config, run.run_id, worker)
            try:
                barrier.wait(STARTUP_TIMEOUT_S)
            except threading.BrokenBarrierError:
                return
            end = time.monotonic() + config.duration_s
            run_loop(store, config, run.run_id, worker, end, halt, logs[worker])
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
    _thread_barrier(barrier, threads, halt, failures)
    tick.start()
    started, cpu, machine = tick.started, time.process_time(), machine_cpu_times()
    hard_stop = started + config.duration_s + FINISH_GRACE_S
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
            tick(sum(log.samples.operations for log in logs), sum(sum(log.samples.errors.values()) for log in logs))
            if stop.is_set() or time.monotonic() > hard_stop:
                halt.set()
    cpu, machine = time.process_time() - cpu, since(machine)
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
        duplicates=store.count_duplicates(),
        client_cpu_s=cpu,
        machine_cpu=machine,
    )


def _thread_barrier(barrier: threading.Barrier, threads: list[threading.Thread], halt: threading.Event,
                    failures: list[BaseException]) -> None:  # fmt: skip
    """Every worker thread has warmed up, or they are halted and the run fails saying why."""
    try:
        barrier.wait(STARTUP_TIMEOUT_S)
    except threading.BrokenBarrierError:
        halt.set()
        for thread in threads:
            thread.join(10)
        reason = repr(failures[0]) if failures else "the start barrier timed out"
        raise RuntimeError(f"load workers did not start: {reason}") from None


def _process_main(run: _Run, worker: int, queue: SampleQueue, start: Waitable, halt: Waitable) -> None:
    """Entry point of a worker process: its own store (`pool_size` connections), then the same loop as a thread."""
    config = run.config
    try:
        # One shared cache folder, as in production: the DuckDB fallback file in it is per process already.
        store = run.open_stores(config, run.cache_dir, pool_size=config.pool_size, instruments=build_instruments())
    except BaseException as exc:
        queue.put(Failed(worker, f"{type(exc).__name__}: {exc}"))
        return
    try:
        warm_up(store, config, run.run_id, worker)
        # Everything alive now (the heap inherited from the fork server, imports, the store) is long-lived: leave it
        # out of the collector's passes, or the first full collections inside the measured loop walk it all and count
        # as the publishes' client CPU.
        gc.freeze()
        queue.put(Ready(worker))
        if not start.wait(STARTUP_TIMEOUT_S) or halt.is_set():
            return
        log = WorkerLog(worker, queue)
        cpu = time.process_time()
        with _observed(store, config):
            run_loop(store, config, run.run_id, worker, time.monotonic() + config.duration_s, halt, log)
        log.flush()
        queue.put(Done(worker, time.monotonic(), time.process_time() - cpu))
    except BaseException as exc:
        queue.put(Failed(worker, f"{type(exc).__name__}: {exc}"))
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

    def handle(self, message: Message) -> None:
        match message:
            case Batch():
                self._record(message)
            case Ready(worker):
                self.ready.add(worker)
            case Done(worker, ended_at, cpu_s):
                self.ends[worker] = ended_at
                self.cpu_s += cpu_s
            case Failed(worker, reason):
                self.failures.setdefault(worker, reason)

    def _record(self, batch: Batch) -> None:
        samples, instruments = self.samples, self.instruments
        self.per_worker[batch.worker] += len(batch.lookups) if self.config.read_fraction > 0 else len(batch.inserts)
        for insert in batch.inserts:
            samples.add_insert(insert)
            if instruments is not None:
                instruments.observe_insert(insert.backend, insert.symbol, insert.insert_ms)
                if takes_advisory_lock(insert.backend):
                    instruments.observe_lock_wait(insert.symbol, insert.lock_wait_ms)
        for error in batch.errors:
            samples.add_error(error.kind, error.message)
            if instruments is not None:
                instruments.count_insert_error(self.config.backend, error.kind)
        for lookup in batch.lookups:
            samples.add_lookup(lookup)
            if instruments is not None:
                for backend, ms in lookup.reads:
                    instruments.observe_read(backend, lookup.symbol, ms)
                instruments.record_lookup(lookup.symbol, hit=lookup.hit)


def process_context() -> Any:
    """The one way worker processes start, here and in the benchmark: forkserver. fork is unsafe from a parent with
    threads (a lock another thread holds stays held in the child: the service, a pool's threads); spawn would import
    pyarrow, psycopg and DuckDB again in each of 64 workers. The fork server is a fresh single-threaded process that
    imports them once (the preload) and forks every worker from there."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _run_processes(
    run: _Run, tick: _Ticker, store: FeatureStore | None, instruments: Instruments | None, stop: threading.Event
) -> LoadResult:
    config = run.config
    if store is None:
        # Create the manifest tables once, before any worker races to; closed again before the workers start.
        run.open_stores(config, run.cache_dir, pool_size=1, instruments=Instruments.disabled()).close()
    context = process_context()
    queue = context.Queue()
    start = context.Event()
    halt = context.Event()
    processes = [
        context.Process(
            target=_process_main, args=(run, worker, queue, start, halt), name=f"loadtest-{worker}", daemon=True
        )
        for worker in range(config.workers)
    ]
    collector = _Collector(config, instruments)
    launched: list[Any] = []
    try:
        for process in processes:
            process.start()
            launched.append(process)
        _start_barrier(collector, queue, launched, stop)
        start.set()
        tick.start()
        machine = _until_finished(collector, queue, launched, tick, halt, stop)
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
        duplicates = store.count_duplicates()
    else:
        with run.open_stores(config, run.cache_dir, pool_size=1, instruments=Instruments.disabled()) as counter:
            duplicates = counter.count_duplicates()
    return LoadResult(
        config=config,
        samples=collector.samples,
        duration_s=max(collector.ends.values()) - tick.started,
        per_worker_operations=tuple(collector.per_worker),
        duplicates=duplicates,
        client_cpu_s=collector.cpu_s,
        machine_cpu=machine,
    )


def _start_barrier(collector: _Collector, queue: Any, launched: list[Any], stop: threading.Event) -> None:
    """Every worker has opened its store and warmed up, or the run fails saying why."""
    give_up = time.monotonic() + STARTUP_TIMEOUT_S
    while len(collector.ready) < collector.config.workers and not collector.failures:
        try:
            collector.handle(queue.get(timeout=0.25))
        except Empty:
            collector.notice_exits(launched, queue)
            if time.monotonic() > give_up or stop.is_set():
                collector.failures.setdefault(-1, "the start barrier timed out or the run was stopped")
    if collector.failures:
        _drain(queue, collector, seconds=1.0)
        raise RuntimeError(f"load workers did not start: {collector.reasons()}")


def _until_finished(collector: _Collector, queue: Any, launched: list[Any], tick: _Ticker,
                    halt: Any, stop: threading.Event) -> CpuTimes | None:  # fmt: skip
    """Collect until every worker has finished (halted past the duration's grace); the machine's CPU times meanwhile."""
    machine = machine_cpu_times()
    hard_stop = tick.started + collector.config.duration_s + FINISH_GRACE_S
    while collector.finished < collector.config.workers:
        if stop.is_set() or time.monotonic() > hard_stop:
            halt.set()
        try:
            collector.handle(queue.get(timeout=0.25))
        except Empty:
            collector.notice_exits(launched, queue)
            if time.monotonic() > hard_stop + FINISH_GRACE_S:
                break
        tick(collector.samples.operations, sum(collector.samples.errors.values()))
    machine = since(machine)  # the last worker is done: what follows (joins, duplicates) is not the run's
    _drain(queue, collector, seconds=0.0)
    for worker in range(collector.config.workers):
        if worker not in collector.ends:
            collector.failures.setdefault(worker, "did not finish within the grace period")
    return machine


def _drain(queue: Any, collector: _Collector, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            collector.handle(queue.get(timeout=max(deadline - time.monotonic(), 0.01)))
        except Empty:
            if time.monotonic() >= deadline:
                return
