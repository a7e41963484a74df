"""The committed JSON Schema of the native spec: generated from the models, named by the spec files' modeline, and
it accepts the shipped spec and refuses what the models refuse at the shape level (checked with jsonschema)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from generators.__main__ import DEFAULT_OUT
from generators.schema import MODELINE, SCHEMA_PATH, schema_file
from slos.loader import DEFAULT_SPECS_DIR

COMMITTED = DEFAULT_OUT / SCHEMA_PATH


def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(COMMITTED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def native_specs() -> list[Path]:
    found = sorted(DEFAULT_SPECS_DIR.glob("*.yaml"))
    return [p for p in found if yaml.safe_load(p.read_text()).get("version") == "featurestore/v1"]


def test_the_committed_schema_is_the_one_the_models_generate() -> None:
    assert COMMITTED.read_text() == schema_file()


def test_every_native_spec_names_the_schema_in_its_first_line_and_the_path_resolves() -> None:
    assert native_specs()
    for spec in native_specs():
        first = spec.read_text().splitlines()[0]
        assert first == MODELINE
        target = (spec.parent / first.split("$schema=", 1)[1]).resolve()
        assert target == COMMITTED.resolve()


def test_the_schema_accepts_the_shipped_spec() -> None:
    for spec in native_specs():
        errors = list(validator().iter_errors(yaml.safe_load(spec.read_text())))
        assert errors == [], [e.message for e in errors]


def _errors(document: dict[str, Any]) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(document)]


def test_the_schema_refuses_a_typo_and_a_wrong_value_where_an_editor_would_flag_them() -> None:
    document = yaml.safe_load(native_specs()[0].read_text())
    document["slos"][0]["objective"]["treshold"] = 5
    document["slos"][0]["alerts"][0]["severity"] = "urgent"
    document["maintenance_windows"] = [{"name": "x", "time_intervals": [{"weekdays": ["funday"]}]}]
    errors = _errors(document)
    assert any("treshold" in e for e in errors), errors
    assert any(e.startswith("slos.0.alerts.0.severity") for e in errors), errors
    assert any(e.startswith("maintenance_windows.0.time_intervals.0.weekdays.0") for e in errors), errors
