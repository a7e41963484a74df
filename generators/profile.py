"""Render profiles: `production` (what rendered/ holds) and `test` (the same rules on a clock fast enough to watch).

The test profile divides every rate window by 15 (5m -> 20s, 1h -> 4m, 30d -> 2d) and every `for:` by 60
(10m -> 10s, 1m -> 1s), and scrapes and evaluates every second, so an end-to-end test sees an alert go pending,
firing and resolved within a minute against a real Prometheus. Windows shrink less than `for:` so that a window
still holds 20 scrapes. Burn-rate factors do not change (the period and the windows shrink alike); event floors
(`min_events`) shrink with the windows, so one request rate passes the same floors in both profiles. Names keep the
production windows (`job:…:p95_5m`, `long_window="1h"`) so dashboards, routes and tests query the same series in
both profiles. The test profile is never committed.
"""

from __future__ import annotations

from dataclasses import dataclass

from featurestore.conventions import ALERTMANAGER_PORT, DEFAULT_PORT
from slos.models import duration_seconds
from slos.validate import Timing

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_duration(seconds: float) -> str:
    """A Prometheus duration in the largest unit that divides it: 120 -> 2m, 90 -> 90s (at least 1s)."""
    whole = max(1, round(seconds))
    for unit, size in _UNITS:
        if whole % size == 0:
            return f"{whole // size}{unit}"
    raise AssertionError("unreachable: every whole number of seconds divides by 1")


@dataclass(frozen=True)
class Profile:
    name: str
    scrape_interval: str
    evaluation_interval: str
    window_divisor: int
    hold_divisor: int
    scrape_target: str
    alertmanager_target: str
    # The TSDB retention the rules are rendered for: every SLO period must fit in it (render checks).
    retention: str

    def window(self, text: str) -> str:
        """A rate window in this profile."""
        if self.window_divisor == 1:
            return text
        return format_duration(duration_seconds(text) / self.window_divisor)

    def events(self, count: int) -> float:
        """An event floor (`min_events`) in this profile: its windows hold that many times fewer events at one rate."""
        return count / self.window_divisor

    def hold(self, text: str) -> str:
        """A `for:` in this profile."""
        if self.hold_divisor == 1:
            return text
        return format_duration(duration_seconds(text) / self.hold_divisor) if duration_seconds(text) else text

    @property
    def timing(self) -> Timing:
        return Timing(scrape_seconds=duration_seconds(self.scrape_interval), window_divisor=self.window_divisor)

    @property
    def committed(self) -> bool:
        return self is PRODUCTION


# The guide's scrape job: localhost:8000 every 30s; Alertmanager on its default port.
PRODUCTION = Profile(
    "production", "30s", "30s", 1, 1, f"localhost:{DEFAULT_PORT}", f"localhost:{ALERTMANAGER_PORT}", "30d"
)
TEST = Profile("test", "1s", "1s", 15, 60, f"127.0.0.1:{DEFAULT_PORT}", f"127.0.0.1:{ALERTMANAGER_PORT}", "2d")
PROFILES = {profile.name: profile for profile in (PRODUCTION, TEST)}
