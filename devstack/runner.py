"""One local stack as an object: the service, Prometheus, Alertmanager and a webhook receiver on loopback.

`Stack(config).start()` writes the overlays of the rendered configs (`devstack/overlay.py`), starts the
children (`devstack/process.py`) in order, waits until each answers, and returns their URLs; `stop()` leaves
nothing running. `make stack` drives it from `devstack/cli.py`; the end-to-end tests use it directly, on free ports.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType

from devstack.overlay import (
    AlertmanagerOverlay,
    PrometheusOverlay,
    alertmanager_config,
    dump_yaml,
    load_yaml,
    prometheus_config,
)
from devstack.process import LOOPBACK, ManagedProcess, StackError, claim_port, http_ok
from devstack.webhook import Notification, WebhookReceiver
from featurestore.conventions import (
    ALERTMANAGER_PORT,
    DEFAULT_PORT,
    HEALTH_PATH,
    LIVE_PATH,
    METRICS_PATH,
    PROMETHEUS_PORT,
    READY_PATH,
)
from generators.output import OutputError, write
from generators.profile import PROFILES
from generators.promql import GeneratorError
from generators.render import render
from slos.errors import SpecError
from slos.loader import DEFAULT_SPECS_DIR, load_specs

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS_BIN = "prometheus"
ALERTMANAGER_BINS = ("prometheus-alertmanager", "alertmanager")  # Debian's name first
READINESS_PERIOD_S = 5.0  # rendered/kubernetes/deployment.yaml's readinessProbe periodSeconds
READY_TIMEOUT_S = 60.0
TEST_INTERVAL = "1s"


@dataclass(frozen=True)
class StackConfig:
    """One stack's ports (0 = any free port), folders, intervals and the service's environment."""

    state_dir: Path
    rendered_dir: Path
    service_port: int = DEFAULT_PORT
    prometheus_port: int = PROMETHEUS_PORT
    alertmanager_port: int = ALERTMANAGER_PORT
    webhook_port: int = 5001
    pg_dsn: str | None = None
    service_env: Mapping[str, str] = field(default_factory=dict)
    scrape_interval: str | None = None  # None keeps the rendered value
    evaluation_interval: str | None = None
    group_wait: str | None = None
    group_interval: str | None = None
    repeat_interval: str | None = None
    readiness_period_s: float | None = READINESS_PERIOD_S  # None: nobody probes the service

    def with_test_timings(self) -> StackConfig:
        """1 s scrape and evaluation, 1 s Alertmanager grouping: the timings the test profile's rules are made for."""
        return replace(
            self,
            scrape_interval=TEST_INTERVAL,
            evaluation_interval=TEST_INTERVAL,
            group_wait=TEST_INTERVAL,
            group_interval=TEST_INTERVAL,
        )

    def with_free_ports(self) -> StackConfig:
        """Any free loopback ports, so a test never collides with `make stack` or another test."""
        return replace(self, service_port=0, prometheus_port=0, alertmanager_port=0, webhook_port=0)


@dataclass(frozen=True)
class StackUrls:
    service: str
    prometheus: str
    alertmanager: str
    webhook: str
    prometheus_ui: str = ""  # "" for the React UI, "/classic" where only the classic UI is built in (Debian)

    def lines(self) -> list[str]:
        ui = f"{self.prometheus}{self.prometheus_ui}"
        return [
            f"service health     {self.service}{HEALTH_PATH}",
            f"service metrics    {self.service}{METRICS_PATH}",
            f"Prometheus graph   {ui}/graph",
            f"Prometheus alerts  {ui}/alerts",
            f"Prometheus targets {ui}/targets",
            f"Alertmanager       {self.alertmanager}/#/alerts",
            f"webhook receiver   {self.webhook}/<receiver name>",
        ]


def alertmanager_binary() -> str:
    for name in ALERTMANAGER_BINS:
        path = shutil.which(name)
        if path is not None:
            return path
    raise StackError(
        "Alertmanager is not installed: apt-get install --no-install-recommends prometheus-alertmanager "
        "(Debian names the binary prometheus-alertmanager)"
    )


def prometheus_binary() -> str:
    path = shutil.which(PROMETHEUS_BIN)
    if path is None:
        raise StackError("Prometheus is not installed: apt-get install --no-install-recommends prometheus")
    return path


def _service(config: StackConfig, state: Path, port: int) -> ManagedProcess:
    env = {**os.environ, "FEATURESTORE_CACHE_DIR": str(state / "feature_cache"), **config.service_env}
    env.pop("FEATURESTORE_PG_DSN", None)  # config.pg_dsn decides, not whatever the caller exported
    if config.pg_dsn:
        env["FEATURESTORE_PG_DSN"] = config.pg_dsn
    command = [sys.executable, "-m", "service", "--host", LOOPBACK, "--port", str(port)]
    return ManagedProcess("service", command, state_dir=state, env=env, cwd=REPO)


def _server(name: str, binary: str, overlay: Path, address: str, state: Path, storage_flag: str,
            *flags: str) -> ManagedProcess:  # fmt: skip
    """Prometheus or Alertmanager on `address`, with the overlay configuration and its data under `state`."""
    command = [
        binary,
        f"--config.file={overlay}",
        f"{storage_flag}={state / f'{name}-data'}",
        f"--web.listen-address={address}",
        f"--web.external-url=http://{address}",
        *flags,
    ]
    return ManagedProcess(name, command, state_dir=state)


class Stack:
    """Start with `start()` (or `with Stack(config) as stack:`); `stop()` leaves nothing running."""

    def __init__(self, config: StackConfig, *, on_notification: Callable[[Notification], None] | None = None) -> None:
        self.config = config
        self._on_notification = on_notification
        self.webhook: WebhookReceiver | None = None
        self.processes: list[ManagedProcess] = []
        self.urls: StackUrls | None = None
        self.ready_s: dict[str, float] = {}
        self._stopped = threading.Event()

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> StackUrls:
        config = self.config
        state = config.state_dir.resolve()
        rendered = config.rendered_dir.resolve()
        prometheus_yml = rendered / "prometheus" / "prometheus.yml"
        alertmanager_yml = rendered / "alertmanager" / "alertmanager.yml"
        for path in (prometheus_yml, alertmanager_yml):
            if not path.is_file():
                raise StackError(f"{path} is missing: run `make render` (python -m generators) first")
        prometheus_bin, alertmanager_bin = prometheus_binary(), alertmanager_binary()

        service_port = claim_port(config.service_port, "service")
        prometheus_port = claim_port(config.prometheus_port, "Prometheus")
        alertmanager_port = claim_port(config.alertmanager_port, "Alertmanager")
        claim_port(config.webhook_port, "webhook receiver")
        try:
            self.webhook = WebhookReceiver(config.webhook_port, on_notification=self._on_notification).start()
        except OSError as exc:
            raise StackError(f"webhook receiver cannot listen on port {config.webhook_port}: {exc}") from None
        service_address = f"{LOOPBACK}:{service_port}"
        prometheus_address = f"{LOOPBACK}:{prometheus_port}"
        alertmanager_address = f"{LOOPBACK}:{alertmanager_port}"
        self.urls = StackUrls(
            f"http://{service_address}",
            f"http://{prometheus_address}",
            f"http://{alertmanager_address}",
            self.webhook.url,
        )
        prometheus_overlay, alertmanager_overlay = self._write_overlays(
            state / "config", prometheus_yml, alertmanager_yml, service_address, alertmanager_address, self.webhook.url
        )
        # No gossip port for Alertmanager: two stacks on one machine must not find each other.
        alertmanager = _server("alertmanager", alertmanager_bin, alertmanager_overlay, alertmanager_address, state,
                               "--storage.path", "--cluster.listen-address=", "--log.level=info")  # fmt: skip
        prometheus = _server("prometheus", prometheus_bin, prometheus_overlay, prometheus_address, state,
                             "--storage.tsdb.path", "--web.enable-lifecycle")  # fmt: skip
        # Prometheus last: its first scrape and first alert push find the others ready.
        self._launch(
            (_service(config, state, service_port), f"{self.urls.service}{LIVE_PATH}"),
            (alertmanager, f"{self.urls.alertmanager}/-/ready"),
            (prometheus, f"{self.urls.prometheus}/-/ready"),
        )
        # Debian builds Prometheus without the React UI: its pages live under /classic only.
        if not http_ok(f"{self.urls.prometheus}/alerts"):
            self.urls = replace(self.urls, prometheus_ui="/classic")
        if config.readiness_period_s is not None:
            threading.Thread(
                target=self._probe_readiness,
                args=(f"{self.urls.service}{READY_PATH}", config.readiness_period_s),
                name="readiness-probe",
                daemon=True,
            ).start()
        return self.urls

    def _write_overlays(self, config_dir: Path, prometheus_yml: Path, alertmanager_yml: Path, service_address: str,
                        alertmanager_address: str, webhook_url: str) -> tuple[Path, Path]:  # fmt: skip
        """The rendered Prometheus and Alertmanager configurations pointed at this stack; their paths."""
        config = self.config
        prometheus_overlay = config_dir / "prometheus.yml"
        prometheus_overlay_config = PrometheusOverlay(
            service_address=service_address,
            alertmanager_address=alertmanager_address,
            rule_dir=prometheus_yml.parent,
            scrape_interval=config.scrape_interval,
            evaluation_interval=config.evaluation_interval,
        )
        dump_yaml(prometheus_config(load_yaml(prometheus_yml), prometheus_overlay_config), prometheus_overlay,
                  prometheus_yml)  # fmt: skip
        alertmanager_overlay = config_dir / "alertmanager.yml"
        alertmanager_overlay_config = AlertmanagerOverlay(
            receiver_url=webhook_url,
            config_dir=alertmanager_yml.parent,
            group_wait=config.group_wait,
            group_interval=config.group_interval,
            repeat_interval=config.repeat_interval,
        )
        dump_yaml(alertmanager_config(load_yaml(alertmanager_yml), alertmanager_overlay_config), alertmanager_overlay,
                  alertmanager_yml)  # fmt: skip
        return prometheus_overlay, alertmanager_overlay

    def _launch(self, *checks: tuple[ManagedProcess, str]) -> None:
        """Start each process in turn and wait until its URL answers; on any failure stop what started."""
        try:
            for process, url in checks:
                self.processes.append(process)
                process.start()
                self.ready_s[process.name] = process.wait_ready(url, READY_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise

    def _probe_readiness(self, url: str, period_s: float) -> None:
        """What the kubelet does in production: the health checks behind /ready also set the health gauges."""
        while not self._stopped.wait(period_s):
            http_ok(url, timeout_s=period_s)

    def stop(self) -> dict[str, int | None]:
        """Stop every child (Prometheus first) and the webhook receiver; their exit codes. Safe to call twice."""
        self._stopped.set()
        codes: dict[str, int | None] = {}
        for process in reversed(self.processes):
            codes[process.name] = process.stop()
        self.processes = []
        if self.webhook is not None:
            self.webhook.stop()
            self.webhook = None
        return codes

    def failed_process(self) -> ManagedProcess | None:
        """A child that exited on its own, if any."""
        return next((process for process in self.processes if not process.running()), None)


def render_profile(profile: str, out: Path) -> Path:
    """Render the specs with a generators profile into `out`, as `python -m generators --profile <profile>` would."""
    command = f"python -m generators --profile {profile}"
    try:
        write(render(load_specs(DEFAULT_SPECS_DIR), PROFILES[profile], command), out)
    except (SpecError, OutputError, GeneratorError) as exc:
        raise StackError(f"{command} --out {out} failed:\n{exc}") from None
    return out


def wait_for_target_up(prometheus_url: str, timeout_s: float = 20.0) -> float | None:
    """Seconds until every scrape target is up, or None after `timeout_s`.

    The first scrape comes ~5 s after start (discovery's update throttle) plus an offset of up to one scrape
    interval, so poll: 1 s intervals take ~6 s, the rendered 30 s ones up to ~35 s.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            with urllib.request.urlopen(f"{prometheus_url}/api/v1/targets?state=active", timeout=2) as response:
                targets = json.load(response)["data"]["activeTargets"]
        except (OSError, ValueError, KeyError):
            targets = []
        if targets and all(target.get("health") == "up" for target in targets):
            return time.monotonic() - start
        time.sleep(0.25)
    return None
