"""prometheus.yml: the guide's scrape job, the rule files and the Alertmanager target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from featurestore.conventions import METRICS_PATH
from generators.profile import Profile

JOB = "featurestore"  # the guide's job_name; also the `job` label every recording rule keeps


def scrape_job(profile: Profile) -> dict[str, Any]:
    return {
        "job_name": JOB,
        "metrics_path": METRICS_PATH,
        "scrape_interval": profile.scrape_interval,
        "static_configs": [{"targets": [profile.scrape_target]}],
    }


def config(rule_files: Sequence[str], profile: Profile) -> dict[str, Any]:
    """`rule_files` are relative to prometheus.yml (rules/<spec>.yml)."""
    return {
        "global": {"scrape_interval": profile.scrape_interval, "evaluation_interval": profile.evaluation_interval},
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [profile.alertmanager_target]}]}]},
        "rule_files": list(rule_files),
        "scrape_configs": [scrape_job(profile)],
    }
