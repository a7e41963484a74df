"""bench/probes.py: the fleet scrape probe times the scrapes of live workers, whose files no scrape folds away."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bench import probes
from featurestore import compaction, multiprocess


def test_the_fleet_probe_s_workers_hold_their_liveness_locks_so_no_scrape_compacts_their_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scrapes: list[tuple[int, list[str], int]] = []
    compact = compaction.compact

    def observed(folder: Path, *args: Any, **kwargs: Any) -> list[str]:
        mine = multiprocess.alive_file(folder, multiprocess.process_identity())
        workers = [path for path in folder.glob("process_*.alive") if path != mine]
        done = compact(folder, *args, **kwargs)
        scrapes.append((len(workers), done, len(list(folder.glob("histogram_*.db")))))
        return done

    monkeypatch.setattr(probes.compaction, "compact", observed)
    cost = probes.fleet_scrape_cost(processes=3, symbols=4, scrapes=2)
    assert scrapes == [(3, [], 3)] * 3  # the first scrape, timed apart, then the two of the percentiles
    assert cost.first_wall_ms is not None and cost.first_cpu_ms is not None
    assert cost.backends == ("3 processes",)


def test_the_scrape_probes_fill_past_the_cap_without_a_warning_per_simulated_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("WARNING", logger="featurestore.instruments")
    probes.scrape_cost(scrapes=1)
    probes.fleet_scrape_cost(processes=2, scrapes=1)
    probes.churned_scrape_cost(ended=3, scrapes=1)
    assert [record.getMessage() for record in caplog.records if "symbol label cap" in record.getMessage()] == []
    assert logging.getLogger("featurestore.instruments").level == logging.WARNING  # restored as it was set
