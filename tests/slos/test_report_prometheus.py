"""`python -m slos report` against a real Prometheus that evaluates the test-profile rules every second, scraping a
tiny exporter served from this module: its availability and latency SLOs burn slowly, then fast. The page must hold
one chart per budgeted SLO with the points Prometheus recorded, and Chromium must draw it (the screenshot lands in
test-artifacts/, git-ignored, for a person to look at)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from devstack.process import LOOPBACK, ManagedProcess, free_port
from devstack.runner import prometheus_binary, render_profile
from featurestore.conventions import METRICS_PATH
from featurestore.metrics import BACKEND_POSTGRESQL, HTTP_REQUESTS, LABEL_STATUS_CLASS, MANIFEST_INSERT_LATENCY
from slos.loader import DEFAULT_SPECS_DIR, load_specs
from slos.records import BUDGET_REMAINING_RECORD, SLO_LABEL
from slos.report import PAGE_NAME
from slos.report_prometheus import selector
from tests.conftest import REPO, require_tool

pytestmark = [pytest.mark.e2e, pytest.mark.server]

ARTIFACTS = REPO / "test-artifacts"
BUDGETED = [slo.name for slo in load_specs(DEFAULT_SPECS_DIR).slos if slo.budgeted]
QUIET_SCRAPES = 20  # then the errors rise: the budget line turns down and the burn rates climb
LOUD_SCRAPES = 20
POINTS = 30  # budget-remaining points per SLO before the report runs
READY_TIMEOUT_S = 60.0
DATA_TIMEOUT_S = 150.0


class Exporter:
    """The catalog's request counter and insert histogram; every scrape adds one step of traffic first."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(HTTP_REQUESTS.name, HTTP_REQUESTS.help, HTTP_REQUESTS.labels, registry=self.registry)
        latency = MANIFEST_INSERT_LATENCY
        self.inserts = Histogram(latency.name, latency.help, latency.labels, buckets=latency.buckets,
                                 registry=self.registry)  # fmt: skip
        self.scrapes = 0
        self.lock = threading.Lock()

    def step(self) -> bytes:
        with self.lock:
            self.scrapes += 1
            loud = self.scrapes > QUIET_SCRAPES
            labels = {label: "x" for label in HTTP_REQUESTS.labels}
            self.requests.labels(**{**labels, LABEL_STATUS_CLASS: "2xx"}).inc(1000)
            self.requests.labels(**{**labels, LABEL_STATUS_CLASS: "5xx"}).inc(5 if loud else self.scrapes % 2)
            insert = self.inserts.labels(BACKEND_POSTGRESQL, "AAPL")
            for _ in range(100):
                insert.observe(2.0)
            for _ in range(12 if loud else 1):
                insert.observe(10.0)
            return generate_latest(self.registry)


def serve(exporter: Exporter) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exporter.step()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass(frozen=True)
class Run:
    url: str
    page: Path
    stdout: str


def prometheus_yml(rules: Path, exporter_port: int) -> str:
    return (
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{rules}']\n"
        "scrape_configs:\n"
        f"  - job_name: featurestore\n    metrics_path: {METRICS_PATH}\n"
        f"    static_configs: [{{targets: ['{LOOPBACK}:{exporter_port}']}}]\n"
    )


def recorded_points(url: str, name: str) -> int:
    """Budget-remaining samples of SLO `name` over the last 5 minutes, read apart from the report's own reader."""
    query = f"count_over_time({selector(BUDGET_REMAINING_RECORD, {SLO_LABEL: name})}[5m])"
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}", timeout=10) as answer:
        result = json.load(answer)["data"]["result"]
    return min((int(item["value"][1]) for item in result), default=0)


def wait_for_points(url: str, exporter: Exporter) -> None:
    """Until every budgeted SLO has POINTS budget-remaining points and the loud phase is over, or fail."""
    deadline = time.monotonic() + DATA_TIMEOUT_S
    counts: list[int] = []
    while time.monotonic() < deadline:
        counts = [recorded_points(url, name) for name in BUDGETED]
        if min(counts) >= POINTS and exporter.scrapes >= QUIET_SCRAPES + LOUD_SCRAPES:
            return
        time.sleep(1)
    pytest.fail(f"budget points per SLO {counts}, scrapes {exporter.scrapes} after {DATA_TIMEOUT_S:.0f} s")


@pytest.fixture(scope="module")
def report_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    require_tool("prometheus")
    base = tmp_path_factory.mktemp("slo-report")
    rules = render_profile("test", base / "rendered") / "prometheus" / "rules" / "featurestore.yml"
    exporter = Exporter()
    server = serve(exporter)
    config = base / "prometheus.yml"
    config.write_text(prometheus_yml(rules, server.server_address[1]))
    address = f"{LOOPBACK}:{free_port()}"
    prometheus = ManagedProcess("prometheus", [prometheus_binary(), f"--config.file={config}",
                                f"--storage.tsdb.path={base / 'data'}", f"--web.listen-address={address}"],
                                state_dir=base)  # fmt: skip
    prometheus.start()
    try:
        url = f"http://{address}"
        prometheus.wait_ready(f"{url}/-/ready", READY_TIMEOUT_S)
        wait_for_points(url, exporter)
        out = base / "report"
        stdout = subprocess.run(
            [sys.executable, "-m", "slos", "report", "--prometheus", url, "--out", str(out),
             "--range", "3m", "--step", "1s"],
            cwd=REPO, capture_output=True, text=True, check=True, timeout=120,
        ).stdout  # fmt: skip
        yield Run(url, out / PAGE_NAME, stdout)
    finally:
        prometheus.stop()
        server.shutdown()
        server.server_close()


def line_points(page: str, gid: str) -> list[int]:
    """Points of each SVG line with id `gid` (one per chart that has it): the path's move plus its line segments."""
    paths = re.findall(rf'<g id="{gid}">\s*<path d="([^"]*)"', page)
    return [len(re.findall(r"[ML]", d)) for d in paths]


def test_the_report_draws_a_chart_per_slo_with_the_points_prometheus_recorded(report_run: Run) -> None:
    page = report_run.page.read_text()
    assert page.count("<svg") == len(BUDGETED)
    for name in BUDGETED:
        assert f'<section id="{name}">' in page
        assert re.search(rf"\] {name}: (burning|budget exhausted)", report_run.stdout), report_run.stdout
    assert "no data" not in page
    budget, burn = line_points(page, "budget-0"), line_points(page, "burn-1h-0")
    assert len(budget) == len(BUDGETED) and min(budget) >= POINTS, budget
    assert len(burn) == len(BUDGETED) and min(burn) >= POINTS, burn
    assert "Prometheus records the same objective." in page


def test_chromium_draws_the_page(report_run: Run, tmp_path: Path) -> None:
    chromium = require_tool("chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "slo-report.png"
    png.unlink(missing_ok=True)
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp_path}",
         f"--screenshot={png}", "--window-size=1100,2000", report_run.page.as_uri()],
        capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    with Image.open(png) as image:
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        drawn = sum(count for count, colour in colours if colour != (255, 255, 255))
        assert rgb.size == (1100, 2000)
    assert len(colours) > 100, f"{len(colours)} colours in {png}"
    assert drawn > 0.05 * rgb.size[0] * rgb.size[1], f"{drawn} non-white pixels in {png}"
