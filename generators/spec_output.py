"""What one spec renders to, as render.py hands it to readme.py: its alerts and the promtool test plan proving them."""

from __future__ import annotations

from dataclasses import dataclass

from generators.alerts import Alert
from generators.testfile import Plan
from slos.loader import LoadedSpec


@dataclass(frozen=True)
class SpecOutput:
    loaded: LoadedSpec
    stem: str
    alerts: tuple[Alert, ...]
    plan: Plan

    @property
    def rules_path(self) -> str:
        return f"prometheus/rules/{self.stem}.yml"

    @property
    def tests_path(self) -> str:
        return f"prometheus/tests/{self.stem}_test.yml"
