"""The monitoring stack on loopback: the service, a real Prometheus and a real Alertmanager on the rendered configs.

    python -m devstack up      # make stack: start, print the URLs, Ctrl-C stops everything
    python -m devstack down    # make stack-down: stop what an `up` elsewhere left running

```
             scrape /api/v1/monitoring/metrics                 alerts                  webhook POST /<receiver>
 service  ◀──────────────────────────────────── Prometheus ──────────▶ Alertmanager ─────────────────────────▶ receiver
 (python -m service)            (rendered prometheus.yml + rules)   (rendered alertmanager.yml)     (a thread in here)
```

Prometheus and Alertmanager load overlays of `rendered/` written to `<state>/config/` (what changes and why:
`devstack/overlay.py`); `rendered/` itself is never edited. State lives under `.stack/` (gitignored): `config/`,
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
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from devstack.process import StackError, own_cmdline, pid_file_running, stop_pid_file, write_pid_file
from devstack.runner import REPO, Stack, StackConfig, render_profile, wait_for_target_up
from devstack.webhook import Notification
from featurestore.conventions import ALERTMANAGER_PORT, DEFAULT_PORT, PROMETHEUS_PORT

RENDERED = REPO / "rendered"
STATE = REPO / ".stack"


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
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stack in the foreground; Ctrl-C stops it")
    up.add_argument("--profile", choices=("production", "test"), default="production",
                    help="production: rendered/ as committed; test: the short test render, 1 s intervals")  # fmt: skip
    up.add_argument("--service-port", type=int, default=int(os.environ.get("STACK_SERVICE_PORT", DEFAULT_PORT)))
    up.add_argument(
        "--prometheus-port", type=int, default=int(os.environ.get("STACK_PROMETHEUS_PORT", PROMETHEUS_PORT))
    )
    up.add_argument(
        "--alertmanager-port", type=int, default=int(os.environ.get("STACK_ALERTMANAGER_PORT", ALERTMANAGER_PORT))
    )
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
    try:
        config = _stack_config(args, state)
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1

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


def _stack_config(args: argparse.Namespace, state: Path) -> StackConfig:
    """The stack's configuration from the command line; the test profile renders its own rules first."""
    test_profile = args.profile == "test"
    config = StackConfig(
        state_dir=state,
        rendered_dir=render_profile("test", state / "rendered-test") if test_profile else args.rendered_dir,
        service_port=args.service_port,
        prometheus_port=args.prometheus_port,
        alertmanager_port=args.alertmanager_port,
        webhook_port=args.webhook_port,
        pg_dsn=args.pg_dsn,
    )
    return config.with_test_timings() if test_profile else config


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
