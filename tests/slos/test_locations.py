"""One lookup places a native field in its file, whatever the format the SLO was read from."""

from __future__ import annotations

from pathlib import Path

from slos.loader import load_file
from slos.locations import SloLocation


def test_a_native_slo_keeps_every_field_below_its_own_path() -> None:
    where = SloLocation.native("slos[latency_p95]")
    assert where.of("") == "slos[latency_p95]"
    assert where.of("alerts[0].labels.team") == "slos[latency_p95].alerts[0].labels.team"


def test_a_converted_slo_takes_the_longest_known_prefix_and_keeps_the_users_label_keys() -> None:
    where = SloLocation.mapped(
        {
            "": "documents[0]",
            "objective": "documents[0].spec",
            "objective.target": "documents[0].spec.objectives[0].target",
            "labels": "documents[0].metadata.labels",
        }
    )
    assert where.of("objective.target") == "documents[0].spec.objectives[0].target"
    assert where.of("objective.total.query") == "documents[0].spec"
    assert where.of("labels.alertname") == "documents[0].metadata.labels.alertname"
    assert where.of("burn_rate.name") == "documents[0]"


def test_the_loaded_spec_carries_the_locations_its_reader_built(tmp_path: Path) -> None:
    path = tmp_path / "sloth.yaml"
    path.write_text(
        "version: prometheus/v1\nservice: checkout\nslos:\n"
        "  - name: requests\n    objective: 99.9\n"
        "    sli: {events: {error_query: 'sum(rate(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}}\n"
        "    alerting: {name: CheckoutBurn}\n"
    )
    loaded = load_file(path)
    assert loaded.locate(0, "objective.bad") == "slos[0].sli.events.error_query"
    assert loaded.locate(0, "labels.team") == "slos[0].labels.team"
