"""The JSON Schema of a native spec file (`version: featurestore/v1`), generated from the pydantic models.

Rendered to `schema/featurestore-v1.json`; spec files name it in their first line
(`# yaml-language-server: $schema=../../rendered/schema/featurestore-v1.json`) so editors running the YAML language
server complete fields and flag typos as they are typed. `python -m generators --check` keeps it in sync with the
models. What the schema cannot express (the metric catalog, burn rates that can never fire) is left to
`python -m generators validate`.
"""

from __future__ import annotations

import json

from slos.models import NATIVE_VERSION, SpecFile

SCHEMA_PATH = "schema/featurestore-v1.json"
SCHEMA_ID = "https://featurestore.dev/schema/featurestore-v1.json"
MODELINE = f"# yaml-language-server: $schema=../../rendered/{SCHEMA_PATH}"


def spec_schema() -> dict[str, object]:
    schema = SpecFile.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": f"SLO spec file ({NATIVE_VERSION})",
    }


def schema_file() -> str:
    return json.dumps(spec_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
