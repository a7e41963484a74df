"""The monitoring stack on loopback: the service, a real Prometheus and a real Alertmanager on the rendered configs.

    python -m service.stack up      # make stack: start, print the URLs, Ctrl-C stops everything
    python -m service.stack down    # make stack-down: stop what an `up` elsewhere left running

```
             scrape /api/v1/monitoring/metrics                 alerts                  webhook POST /<receiver>
 service  ◀──────────────────────────────────── Prometheus ──────────▶ Alertmanager ─────────────────────────▶ receiver
 (python -m service)            (rendered prometheus.yml + rules)   (rendered alertmanager.yml)     (a thread in here)
```

Prometheus and Alertmanager load overlays of `rendered/` written to `<state>/config/` (what changes and why:
`service/stack_overlay.py`); `rendered/` itself is never edited. State lives under `.stack/` (gitignored): `config/`,
`logs/<name>.log`, `pids/<name>.pid` (children), `supervisor.pid` (the `up` process), `prometheus-data/`,
`alertmanager-data/`, `feature_cache/`. Every child runs in its own process group; stopping sends SIGTERM, then
SIGKILL after a grace period. `down` stops only pids whose command line is still the one the stack recorded. Like the
kubelet's readinessProbe in rendered/kubernetes/deployment.yaml, a thread calls the service's /health/ready every 5 s:
those checks are what set `featurestore_health_check_status`.

The service uses DuckDB unless FEATURESTORE_PG_DSN is set. `--profile test` renders the short test profile of the same
specs (`python -m generators --profile test`) into `<state>/rendered-test/` and scrapes and evaluates every second, so
alerts go from pending to firing within a minute under load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType, TracebackType

from service.stack_overlay import (
    AlertmanagerOverlay,
    PrometheusOverlay,
    alertmanager_config,
    dump_yaml,
    load_yaml,
    prometheus_config,
)
from service.stack_process import (
    LOOPBACK,
    ManagedProcess,
    StackError,
    claim_port,
    http_ok,
    own_cmdline,
    pid_file_running,
    stop_pid_file,
    write_pid_file,
)
from service.stack_webhook import Notification, WebhookReceiver

REPO = Path(__file__).resolve().parent.parent
RENDERED = REPO / "rendered"
STATE = REPO / ".stack"
PROMETHEUS_BIN = "prometheus"
ALERTMANAGER_BINS = ("prometheus-alertmanager", "alertmanager")  # Debian's name first
SERVICE_METRICS_PATH = "/api/v1/monitoring/metrics"
SERVICE_LIVE_PATH = "/api/v1/monitoring/health/live"
SERVICE_HEALTH_PATH = "/api/v1/monitoring/health"
SERVICE_READY_PATH = "/api/v1/monitoring/health/ready"
READINESS_PERIOD_S = 5.0  # rendered/kubernetes/deployment.yaml's readinessProbe periodSeconds
READY_TIMEOUT_S = 60.0
TEST_INTERVAL = "1s"


@dataclass(frozen=True)
class StackConfig:
    """One stack's ports (0 = any free port), folders, intervals and the service's environment."""

    state_dir: Path = STATE
    rendered_dir: Path = RENDERED
    service_port: int = 8000
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
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
            f"service health     {self.service}{SERVICE_HEALTH_PATH}",
            f"service metrics    {self.service}{SERVICE_METRICS_PATH}",
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

        config_dir = state / "config"
        prometheus_overlay = config_dir / "prometheus.yml"
        dump_yaml(
            prometheus_config(
                load_yaml(prometheus_yml),
                PrometheusOverlay(
                    service_address=service_address,
                    alertmanager_address=alertmanager_address,
                    rule_dir=prometheus_yml.parent,
                    scrape_interval=config.scrape_interval,
                    evaluation_interval=config.evaluation_interval,
                ),
            ),
            prometheus_overlay,
            prometheus_yml,
        )
        alertmanager_overlay = config_dir / "alertmanager.yml"
        dump_yaml(
            alertmanager_config(
                load_yaml(alertmanager_yml),
                AlertmanagerOverlay(
                    receiver_url=self.webhook.url,
                    config_dir=alertmanager_yml.parent,
                    group_wait=config.group_wait,
                    group_interval=config.group_interval,
                    repeat_interval=config.repeat_interval,
                ),
            ),
            alertmanager_overlay,
            alertmanager_yml,
        )

        service_env = {**os.environ, "FEATURESTORE_CACHE_DIR": str(state / "feature_cache"), **config.service_env}
        service_env.pop("FEATURESTORE_PG_DSN", None)  # config.pg_dsn decides, not whatever the caller exported
        if config.pg_dsn:
            service_env["FEATURESTORE_PG_DSN"] = config.pg_dsn
        service = ManagedProcess(
            "service",
            [sys.executable, "-m", "service", "--host", LOOPBACK, "--port", str(service_port)],
            state_dir=state,
            env=service_env,
            cwd=REPO,
        )
        alertmanager = ManagedProcess(
            "alertmanager",
            [
                alertmanager_bin,
                f"--config.file={alertmanager_overlay}",
                f"--storage.path={state / 'alertmanager-data'}",
                f"--web.listen-address={alertmanager_address}",
                f"--web.external-url=http://{alertmanager_address}",
                "--cluster.listen-address=",  # no gossip port: two stacks on one machine must not find each other
                "--log.level=info",
            ],
            state_dir=state,
        )
        prometheus = ManagedProcess(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={prometheus_overlay}",
                f"--storage.tsdb.path={state / 'prometheus-data'}",
                f"--web.listen-address={prometheus_address}",
                f"--web.external-url=http://{prometheus_address}",
                "--web.enable-lifecycle",
            ],
            state_dir=state,
        )
        checks = (
            (service, f"{self.urls.service}{SERVICE_LIVE_PATH}"),
            (alertmanager, f"{self.urls.alertmanager}/-/ready"),
            (prometheus, f"{self.urls.prometheus}/-/ready"),
        )
        try:
            # Prometheus last: its first scrape and first alert push find the others ready.
            for process, url in checks:
                self.processes.append(process)
                process.start()
                self.ready_s[process.name] = process.wait_ready(url, READY_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        # Debian builds Prometheus without the React UI: its pages live under /classic only.
        if not http_ok(f"{self.urls.prometheus}/alerts"):
            self.urls = replace(self.urls, prometheus_ui="/classic")
        if config.readiness_period_s is not None:
            threading.Thread(
                target=self._probe_readiness,
                args=(f"{self.urls.service}{SERVICE_READY_PATH}", config.readiness_period_s),
                name="readiness-probe",
                daemon=True,
            ).start()
        return self.urls

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
    """Render the specs with a generators profile into `out` (a subprocess: nothing imports the generators)."""
    command = [sys.executable, "-m", "generators", "--profile", profile, "--out", str(out)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr or result.stdout}")
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


# --- command line -----------------------------------------------------------------------------------------------


def _report_targets(prometheus_url: str, timeout_s: float = 90.0) -> None:
    after = wait_for_target_up(prometheus_url, timeout_s)
    if after is None:
        print(f"stack: a scrape target is still not up after {timeout_s:.0f} s: see {prometheus_url}/targets")
    else:
        print(f"stack: every scrape target is up ({after:.1f} s after Prometheus was ready)", flush=True)


def _supervisor_pid_path(state: Path) -> Path:
    return state / "supervisor.pid"


def _live_pid_files(state: Path) -> list[Path]:
    candidates = [_supervisor_pid_path(state), *sorted((state / "pids").glob("*.pid"))]
    return [path for path in candidates if path.is_file()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service.stack", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stack in the foreground; Ctrl-C stops it")
    up.add_argument("--profile", choices=("production", "test"), default="production",
                    help="production: rendered/ as committed; test: the short test render, 1 s intervals")  # fmt: skip
    up.add_argument("--service-port", type=int, default=int(os.environ.get("STACK_SERVICE_PORT", 8000)))
    up.add_argument("--prometheus-port", type=int, default=int(os.environ.get("STACK_PROMETHEUS_PORT", 9090)))
    up.add_argument("--alertmanager-port", type=int, default=int(os.environ.get("STACK_ALERTMANAGER_PORT", 9093)))
    up.add_argument("--webhook-port", type=int, default=int(os.environ.get("STACK_WEBHOOK_PORT", 5001)))
    up.add_argument("--rendered-dir", type=Path, default=RENDERED,
                    help="the rendered bundle to run (default: rendered/; ignored with --profile test)")  # fmt: skip
    up.add_argument("--pg-dsn", default=os.environ.get("FEATURESTORE_PG_DSN"),
                    help="PostgreSQL manifest DSN (default: $FEATURESTORE_PG_DSN; unset = DuckDB)")  # fmt: skip
    for command in (up, commands.add_parser("down", help="stop what an `up` left running (pid files only)")):
        command.add_argument("--state-dir", type=Path, default=Path(os.environ.get("STACK_STATE_DIR", STATE)))
    return parser


def up(args: argparse.Namespace) -> int:
    state: Path = args.state_dir.resolve()
    running = pid_file_running(_supervisor_pid_path(state))
    if running is not None:
        print(f"stack: a stack already runs from {state} (pid {running}); stop it first: make stack-down",
              file=sys.stderr)  # fmt: skip
        return 1
    if _live_pid_files(state):
        print(f"stack: an earlier stack in {state} did not stop cleanly; stopping what it left behind")
        down(args)
    test_profile = args.profile == "test"
    try:
        rendered = render_profile("test", state / "rendered-test") if test_profile else args.rendered_dir
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    config = StackConfig(
        state_dir=state,
        rendered_dir=rendered,
        service_port=args.service_port,
        prometheus_port=args.prometheus_port,
        alertmanager_port=args.alertmanager_port,
        webhook_port=args.webhook_port,
        pg_dsn=args.pg_dsn,
    )
    if test_profile:
        config = config.with_test_timings()

    def print_notification(notification: Notification) -> None:
        print(f"stack: webhook {notification.describe()}", flush=True)

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    write_pid_file(_supervisor_pid_path(state), os.getpid(), own_cmdline())
    stack = Stack(config, on_notification=print_notification)
    try:
        backend = "PostgreSQL" if config.pg_dsn else "DuckDB"
        print(f"stack: starting the service ({backend}), Alertmanager and Prometheus ({args.profile} profile)")
        urls = stack.start()
        print("stack: ready (" + ", ".join(f"{name} {s:.1f} s" for name, s in stack.ready_s.items()) + ")")
        for line in urls.lines():
            print(f"  {line}")
        print(f"  logs and state     {state}")
        print("stack: Ctrl-C (or make stack-down) stops everything", flush=True)
        threading.Thread(target=_report_targets, args=(urls.prometheus,), daemon=True).start()
        while True:
            failed = stack.failed_process()
            if failed is not None:
                print(f"stack: {failed.name} exited on its own:\n{failed.log_tail()}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstack: stopping")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        codes = stack.stop()
        _supervisor_pid_path(state).unlink(missing_ok=True)
        if codes:
            print("stack: stopped " + ", ".join(f"{name} (exit {code})" for name, code in codes.items()))


def down(args: argparse.Namespace) -> int:
    state: Path = args.state_dir.resolve()
    pid_files = _live_pid_files(state)
    if not pid_files:
        print(f"stack: nothing to stop (no pid files in {state})")
        return 0
    # The supervisor first: it stops its children in order; the rest covers a supervisor that was killed.
    for path in pid_files:
        if path.is_file():
            print(f"stack: {stop_pid_file(path)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return up(args) if args.command == "up" else down(args)


if __name__ == "__main__":
    raise SystemExit(main())
