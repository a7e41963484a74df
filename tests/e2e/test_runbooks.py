"""Every alert's runbook_url resolves to a page under docs/runbooks/, whose PromQL parses and whose SQL runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import promql_parser
import psycopg
import pytest
import yaml

from featurestore.manifest.pg_schema import ensure_schema
from slos.loader import load_file
from tests.conftest import REPO

RUNBOOKS = REPO / "docs" / "runbooks"
RULES = REPO / "rendered" / "prometheus" / "rules"
SPEC = REPO / "slos" / "specs" / "featurestore.yaml"
INDEX = "README.md"
SECTIONS = ("## Symptoms", "## Possible causes", "## Investigation")
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def rendered_alerts() -> dict[str, dict[str, Any]]:
    """Every alerting rule of the rendered rule files, by name (the last one wins for repeated names)."""
    files = sorted(RULES.glob("*.yml"))
    if not files:
        pytest.fail(f"no rule files in {RULES}: the generators must render them (python -m generators)")
    alerts: dict[str, dict[str, Any]] = {}
    for path in files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts[rule["alert"]] = rule
    return alerts


def pages() -> list[Path]:
    return sorted(path for path in RUNBOOKS.glob("*.md") if path.name != INDEX)


def blocks(language: str) -> list[tuple[str, str]]:
    """(page name, block text) of every fenced block in `language` across the runbooks."""
    return [
        (path.name, match.group(2).strip())
        for path in pages()
        for match in _FENCE.finditer(path.read_text())
        if match.group(1) == language
    ]


def test_every_rendered_alert_links_to_its_runbook_page_under_the_specs_base_url() -> None:
    base = load_file(SPEC).spec.runbook_base_url.rstrip("/")
    missing = {}
    for name, rule in rendered_alerts().items():
        url = rule.get("annotations", {}).get("runbook_url", "")
        expected = f"{base}/{name}.md"
        page = RUNBOOKS / url.removeprefix(base + "/") if url.startswith(base + "/") else None
        if url != expected or page is None or not page.is_file():
            missing[name] = url
    assert missing == {}


def test_every_runbook_page_belongs_to_a_rendered_alert_and_is_listed_in_the_index() -> None:
    alerts = rendered_alerts()
    index = (RUNBOOKS / INDEX).read_text()
    assert [path.stem for path in pages() if path.stem not in alerts] == []
    assert [name for name in alerts if f"]({name}.md)" not in index] == []


@pytest.mark.parametrize("page", pages(), ids=lambda path: path.stem)
def test_a_runbook_page_has_the_guides_sections_and_is_titled_by_its_alert(page: Path) -> None:
    text = page.read_text()
    assert text.startswith(f"# {page.stem}\n")
    assert [section for section in SECTIONS if f"\n{section}\n" not in text] == []
    assert "```promql" in text


def test_the_runbooks_have_promql_and_sql_to_check() -> None:
    assert len(blocks("promql")) >= len(pages())
    assert len(blocks("sql")) >= len(pages())


@pytest.mark.parametrize(("page", "query"), blocks("promql"), ids=lambda value: str(value)[:60])
def test_a_runbook_promql_query_parses(page: str, query: str) -> None:
    try:
        promql_parser.parse(query)
    except ValueError as exc:
        pytest.fail(f"{page}: {query!r} does not parse: {exc}")


@pytest.mark.postgres
def test_every_runbook_sql_block_runs_read_only_on_postgresql(pg_schema_dsn: str) -> None:
    with psycopg.connect(pg_schema_dsn, autocommit=True) as conn:
        ensure_schema(conn)  # the manifest's own tables, in the test's schema
    failures = {}
    with psycopg.connect(pg_schema_dsn) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
        assert version is not None and int(version[0]) // 10000 == 15
        for page, sql in blocks("sql"):
            for statement in (part.strip() for part in sql.split(";")):
                if not statement:
                    continue
                try:
                    conn.execute("SET TRANSACTION READ ONLY")
                    conn.execute(statement.encode())
                except psycopg.Error as exc:
                    failures[f"{page}: {statement[:60]}"] = str(exc).strip()
                finally:
                    conn.rollback()
    assert failures == {}
