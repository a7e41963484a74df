from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import slos.openslo
from slos.loader import SpecError, load_file
from slos.models import RatioObjective
from slos.openslo import parse_documents

CASES = Path(__file__).resolve().parents[1] / "generators" / "cases"


def docstring_example() -> list[object]:
    doc = slos.openslo.__doc__ or ""
    return list(yaml.safe_load_all(doc.split("```yaml\n")[1].split("```")[0]))


def test_the_docstring_example_becomes_a_ratio_slo_with_the_native_burn_rate_defaults() -> None:
    spec = parse_documents(docstring_example(), Path("example.yaml"))
    (slo,) = spec.slos
    assert (spec.service, slo.name) == ("checkout", "checkout_availability")
    assert isinstance(slo.objective, RatioObjective)
    assert (slo.objective.target, slo.objective.period) == (0.995, "28d")
    assert slo.objective.bad is not None and slo.objective.bad.query == 'http_requests_total{code=~"5.."}'
    assert slo.objective.total.query == "http_requests_total"
    assert slo.burn_rate is not None
    assert (slo.burn_rate.name, slo.burn_rate.absent_alert) == (
        "CheckoutAvailabilityBudgetBurn",
        "CheckoutAvailabilityBudgetBurnMetricsAbsent",
    )


def test_slo_sli_and_service_documents_in_one_file_are_joined_by_name() -> None:
    loaded = load_file(CASES / "openslo_checkout" / "spec.yaml")
    assert loaded.source_format == "openslo"
    spec = loaded.spec
    assert spec.service == "checkout"
    assert spec.description == "Checkout API"
    assert spec.runbook_base_url == "https://runbooks.example.com/checkout"
    availability, latency = spec.slos
    assert isinstance(availability.objective, RatioObjective) and isinstance(latency.objective, RatioObjective)
    assert availability.objective.target == 0.995  # targetPercent: 99.5
    assert availability.labels == {"team": "payments"}
    assert latency.objective.good is not None and "{{.window}}" in (latency.objective.good.query or "")
    assert latency.description == "99 % of checkout requests finish within 300 ms"


def test_a_target_percent_is_turned_into_a_fraction_without_float_noise() -> None:
    documents = docstring_example()
    objectives = documents[0]["spec"]["objectives"]  # type: ignore[index]
    objectives[0] = {"targetPercent": 99.9}
    (slo,) = parse_documents(documents, Path("x.yaml")).slos
    assert isinstance(slo.objective, RatioObjective) and slo.objective.target == 0.999


def test_several_services_in_one_file_are_refused() -> None:
    documents = docstring_example() + docstring_example()
    documents[1]["metadata"]["name"] = "other-slo"  # type: ignore[index]
    documents[1]["spec"]["service"] = "payments"  # type: ignore[index]
    with pytest.raises(SpecError, match="one service per file, found checkout, payments"):
        parse_documents(documents, Path("x.yaml"))
