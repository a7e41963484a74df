"""The metrics folder under real concurrency: a file growing while the service reads it, two workers that are both
pid 1 (separate PID namespaces), and 300 short-lived processes (a quarter SIGKILLed) while the service scrapes."""

from __future__ import annotations

import os
import queue
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from featurestore.instruments import Instruments
from featurestore.layout import METRICS_FOLDER
from featurestore.multiprocess import ENV
from service.app import create_app
from service.exporter import FleetExporter
from tests.conftest import REPO
from tests.reliability.metrics_writers import GROW_KEYS_PER_FILE
from tests.service.conftest import LOOPBACK, service_settings, store_settings

pytestmark = pytest.mark.fault
# The race runs until both hold (conditions, not a duration, so a loaded machine only makes it longer): this many
# scrapes, and this many writer files grown through 64 KiB while they were scraped.
RACE_SCRAPES = 100
RACE_FILES = 5
RACE_LIMIT_S = 600.0  # hang detection only
METRICS = "/api/v1/monitoring/metrics"


def _writer(role: str, *arguments: str, folder: Path, prefix: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "tests.reliability.metrics_writers", role, *arguments],
        cwd=REPO,
        env={**os.environ, ENV: str(folder)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _misses(body: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith("featurestore_misses_total{")
    )


def test_files_growing_through_64_kib_while_the_service_scrapes_are_never_failed_or_over_counted(
    tmp_path: Path,
) -> None:
    progress_path, stop_path = tmp_path / "progress", tmp_path / "stop"
    progress_path.write_bytes(b"\0" * 8)

    def progress() -> int:
        done: int = struct.unpack("q", progress_path.read_bytes())[0]
        return done

    settings = store_settings(tmp_path / "cache")
    with TestClient(create_app(service_settings(), settings), client=LOOPBACK) as client:
        writer = _writer("grow", str(progress_path), str(stop_path), folder=tmp_path / "cache" / METRICS_FOLDER)
        try:
            scrapes, failed, over, under, skipped = 0, [], [], [], []
            limit = time.monotonic() + RACE_LIMIT_S
            while writer.poll() is None:
                if scrapes >= RACE_SCRAPES and progress() >= RACE_FILES * GROW_KEYS_PER_FILE:
                    stop_path.touch()  # the writer ends after its current file; scrape until it has
                assert time.monotonic() < limit, f"{scrapes} scrapes and {progress()} increments in {RACE_LIMIT_S} s"
                floor = progress()
                response = client.get(METRICS)
                ceiling = progress() + 1  # the writer may have added one more before saying so
                scrapes += 1
                if response.status_code != 200:
                    failed.append(response.status_code)
                    continue
                served = _misses(response.text)
                if served > ceiling:
                    over.append((served, ceiling))
                if served < floor:
                    under.append((served, floor))
                if "featurestore_metrics_files_skipped 0.0" not in response.text:
                    skipped.append(scrapes)
            assert writer.wait(timeout=60) == 0
            assert (failed, over, under, skipped) == ([], [], [], [])
            final = client.get(METRICS)
            assert _misses(final.text) == progress()
            compacted = tmp_path / "cache" / METRICS_FOLDER / "counter_compacted.db"
            assert compacted.exists()  # the writers ended one after another and their files were compacted
        finally:
            if writer.poll() is None:
                writer.kill()
            writer.wait(timeout=60)
            writer.stdin.close() if writer.stdin else None
            writer.stdout.close() if writer.stdout else None


@pytest.fixture
def exporter_folder(tmp_path: Path) -> Iterator[tuple[FleetExporter, Path]]:
    folder = tmp_path / "metrics"
    folder.mkdir()
    exporter = FleetExporter(Instruments.disabled(), folder, 300.0)
    yield exporter, folder
    exporter.close()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="unshare -p needs root")
def test_two_workers_that_are_both_pid_1_in_their_own_pid_namespaces_are_counted_apart(
    exporter_folder: tuple[FleetExporter, Path],
) -> None:
    exporter, folder = exporter_folder
    prefix = ("unshare", "--pid", "--fork", "--mount-proc")
    workers = [_writer("lookups", str(count), folder=folder, prefix=prefix) for count in (40, 60)]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "1"  # both are pid 1
        assert len(list(folder.glob("process_1-*.alive"))) == 2
        assert exporter.aggregate().total("featurestore_hits") == 100
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.close()
            assert worker.wait(timeout=60) == 0
        assert exporter.aggregate().total("featurestore_hits") == 100  # compacted, still exact
        assert list(folder.glob("process_1-*.alive")) == [] and list(folder.glob("counter_1-*.db")) == []
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait(timeout=60)
            if worker.stdout is not None:
                worker.stdout.close()


def test_300_short_lived_processes_a_quarter_sigkilled_are_counted_exactly_at_every_scrape_and_compacted(
    exporter_folder: tuple[FleetExporter, Path],
) -> None:
    exporter, folder = exporter_folder
    processes, hits = 300, 3
    parent = _writer("churn", str(processes), str(hits), folder=folder)
    totals: queue.Queue[str] = queue.Queue()

    def read_totals() -> None:
        assert parent.stdout is not None
        for line in parent.stdout:
            totals.put(line)

    threading.Thread(target=read_totals, daemon=True).start()
    assert totals.get(timeout=120) == "ready\n"

    def scrape() -> tuple[float, int, float]:
        started = time.process_time()
        aggregate = exporter.aggregate()
        files = sum(1 for name in os.listdir(folder) if name.endswith(".db"))
        return aggregate.total("featurestore_hits"), files, time.process_time() - started

    try:
        before = [scrape() for _ in range(20)]
        assert {total for total, _, _ in before} == {0.0}
        assert parent.stdin is not None
        parent.stdin.write("\n")
        parent.stdin.flush()
        done, inexact, out_of_bounds, during = 0.0, [], [], []
        for batch in range(processes // 10):
            total = float(totals.get(timeout=120))
            for _ in range(3):  # every child of the batch has ended: exact, while their files are compacted
                served, _, _ = scrape()
                if served != total:
                    inexact.append((served, total))
            done = total
            if batch == processes // 10 - 1:
                break
            assert parent.stdin is not None
            parent.stdin.write("\n")
            parent.stdin.flush()
            while totals.empty() and parent.poll() is None:  # a batch in flight: between what ended and all of it
                served, _, cpu = scrape()
                during.append(cpu)
                if not done <= served <= done + 10 * hits:
                    out_of_bounds.append((served, done))
                if totals.empty():
                    time.sleep(0.01)
        assert done == processes * hits
        assert (inexact, out_of_bounds) == ([], [])
        after = [scrape() for _ in range(20)]
        assert {total for total, _, _ in after} == {float(processes * hits)}
        # At most a few files per live process: the parent's own, and one compacted file per kind.
        files_before, files_after = before[-1][1], after[-1][1]
        assert files_after <= files_before + 2, " ".join(sorted(os.listdir(folder)))
        assert len(list(folder.glob("process_*.alive"))) == 1  # the parent's only
        p95_before = sorted(cpu for _, _, cpu in before)[18]
        p95_after = sorted(cpu for _, _, cpu in after)[18]
        print(f"scrape CPU p95: {p95_before * 1000:.2f} ms before the churn, {p95_after * 1000:.2f} ms after")
    finally:
        if parent.stdin is not None:
            parent.stdin.close()
        if parent.poll() is None:
            parent.kill()
        parent.wait(timeout=60)
        if parent.stdout is not None:
            parent.stdout.close()
