"""The local overlay: `rendered/` configs with only the differences of a machine running everything on loopback.

`rendered/` is what production applies and is never edited. The stack loads the rendered YAML and writes a copy
under its state folder with these changes, and only these:

prometheus.yml
  - every scrape job's targets: the service's loopback address replaces the job's service discovery (static or
    Kubernetes); the job name, metrics path, scheme and static labels stay as rendered;
  - `rule_files`: made absolute, still pointing at the rendered rule files (relative paths would resolve against
    the overlay's folder);
  - `alerting.alertmanagers`: the local Alertmanager's address;
  - optionally `scrape_interval` / `evaluation_interval` (1 s for the tests), globally and per job.

alertmanager.yml
  - every receiver: its integrations (email, Slack, PagerDuty, webhooks...) become one webhook to
    `<receiver url>/<receiver name>` with `send_resolved: true`, so the local receiver sees which route matched;
  - optionally `group_wait` / `group_interval` / `repeat_interval` on every route that sets them and on the root
    (1 s for the tests);
  - `templates`: made absolute;
  - `global`: only `resolve_timeout` is kept (SMTP, Slack or PagerDuty settings serve the integrations replaced).
The route tree, matchers and inhibition rules stay as rendered: they are what the end-to-end tests check.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Config = dict[str, Any]

# Every receiver integration key; the overlay replaces them all with one webhook.
_RECEIVER_KEYS = (
    "email_configs", "pagerduty_configs", "slack_configs", "webhook_configs", "opsgenie_configs", "victorops_configs",
    "pushover_configs", "wechat_configs", "sns_configs", "telegram_configs", "webex_configs", "discord_configs",
    "msteams_configs",
)  # fmt: skip
_ROUTE_TIMINGS = ("group_wait", "group_interval", "repeat_interval")


@dataclass(frozen=True)
class PrometheusOverlay:
    """What differs for Prometheus on this machine."""

    service_address: str  # host:port of the service's metrics endpoint
    alertmanager_address: str
    rule_dir: Path  # where the rendered prometheus.yml lives: its relative rule_files resolve here
    scrape_interval: str | None = None
    evaluation_interval: str | None = None


@dataclass(frozen=True)
class AlertmanagerOverlay:
    """What differs for Alertmanager on this machine."""

    receiver_url: str  # base URL of the webhook receiver; each receiver posts to <receiver_url>/<name>
    config_dir: Path  # where the rendered alertmanager.yml lives: its relative templates resolve here
    group_wait: str | None = None
    group_interval: str | None = None
    repeat_interval: str | None = None


def load_yaml(path: Path) -> Config:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping at the top level")
    return data


def dump_yaml(config: Config, path: Path, source: Path) -> None:
    """Write an overlay config with a header naming the rendered file it came from."""
    header = (
        f"# Local overlay of {source} written by `python -m devstack` (see devstack/overlay.py).\n"
        "# Do not edit: it is rewritten on every start; production uses the rendered file itself.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(config, sort_keys=False, default_flow_style=False))


def prometheus_config(rendered: Config, overlay: PrometheusOverlay) -> Config:
    """The rendered prometheus.yml with the local differences applied (the input is not modified)."""
    config = copy.deepcopy(rendered)
    global_section = config.setdefault("global", {})
    if overlay.scrape_interval is not None:
        global_section["scrape_interval"] = overlay.scrape_interval
    if overlay.evaluation_interval is not None:
        global_section["evaluation_interval"] = overlay.evaluation_interval
    config["rule_files"] = [_absolute(overlay.rule_dir, str(path)) for path in config.get("rule_files") or []]
    jobs = config.get("scrape_configs") or []
    if not jobs:
        raise ValueError("the rendered prometheus.yml has no scrape_configs: nothing would scrape the service")
    for job in jobs:
        _localize_job(job, overlay)
    config["alerting"] = {
        **(config.get("alerting") or {}),
        "alertmanagers": [{"static_configs": [{"targets": [overlay.alertmanager_address]}]}],
    }
    return config


def _localize_job(job: Config, overlay: PrometheusOverlay) -> None:
    labels: dict[str, str] = {}
    for static in job.get("static_configs") or []:
        labels.update(static.get("labels") or {})
    for key in [key for key in job if key.endswith("_sd_configs")]:
        del job[key]
    # Relabelling written for Kubernetes discovery reads __meta_kubernetes_* labels that a static target lacks;
    # keep only the rules that do not depend on discovery metadata.
    relabel = [rule for rule in job.get("relabel_configs") or [] if not _reads_meta(rule)]
    if relabel:
        job["relabel_configs"] = relabel
    else:
        job.pop("relabel_configs", None)
    static_config: Config = {"targets": [overlay.service_address]}
    if labels:
        static_config["labels"] = labels
    job["static_configs"] = [static_config]
    if overlay.scrape_interval is not None:
        job["scrape_interval"] = overlay.scrape_interval
        if "scrape_timeout" in job:
            job["scrape_timeout"] = overlay.scrape_interval


def _reads_meta(rule: Config) -> bool:
    return any(str(label).startswith("__meta_") for label in rule.get("source_labels") or [])


def alertmanager_config(rendered: Config, overlay: AlertmanagerOverlay) -> Config:
    """The rendered alertmanager.yml with the local differences applied (the input is not modified)."""
    config = copy.deepcopy(rendered)
    receivers = config.get("receivers") or []
    if not receivers:
        raise ValueError("the rendered alertmanager.yml has no receivers")
    for receiver in receivers:
        for key in _RECEIVER_KEYS:
            receiver.pop(key, None)
        receiver["webhook_configs"] = [
            {"url": f"{overlay.receiver_url.rstrip('/')}/{receiver['name']}", "send_resolved": True}
        ]
    if "route" not in config:
        raise ValueError("the rendered alertmanager.yml has no route")
    _retime(config["route"], overlay, root=True)
    if config.get("templates"):
        config["templates"] = [_absolute(overlay.config_dir, str(path)) for path in config["templates"]]
    # Global SMTP/Slack/PagerDuty settings only serve the integrations replaced above.
    global_section = config.get("global") or {}
    kept = {key: value for key, value in global_section.items() if key == "resolve_timeout"}
    if kept:
        config["global"] = kept
    else:
        config.pop("global", None)
    return config


def _retime(route: Config, overlay: AlertmanagerOverlay, *, root: bool) -> None:
    for key in _ROUTE_TIMINGS:
        value = getattr(overlay, key)
        if value is not None and (root or key in route):
            route[key] = value
    for child in route.get("routes") or []:
        _retime(child, overlay, root=False)


def _absolute(base: Path, path: str) -> str:
    return path if Path(path).is_absolute() else str((base / path).resolve())
