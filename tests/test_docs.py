"""The README and docs/ hold together: the README stays short and links every page, every relative link and anchor
resolves, the generated tables match the code and the committed benchmark reports, and what the pages state about
the load endpoint's defaults and limits is what the code enforces."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings

from docsgen.__main__ import DOCS, drifted
from docsgen.regions import RegionError, region, replace_region
from docsgen.settings_table import MissingDescription, settings_table
from featurestore.keys import MAX_NAME_LENGTH
from service.load_runner import LoadRequest
from service.settings import ServiceSettings
from tests.conftest import REPO

README = REPO / "README.md"
PAGES = sorted(DOCS.glob("*.md"))
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def broken_links(page: Path) -> list[str]:
    """`page: target (why)` for each relative link of `page` whose file or anchor does not exist."""
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    found = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            found.append(f"{page.name}: {target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            found.append(f"{page.name}: {target} (no such heading)")
    return found


def test_the_readme_is_at_most_200_lines() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200


def test_the_readme_links_every_docs_page() -> None:
    linked = {(REPO / target.partition("#")[0]).resolve() for target in _LINK.findall(README.read_text())}
    assert {page.resolve() for page in PAGES} - linked == set()


@pytest.mark.parametrize("page", [README, *PAGES, *sorted((DOCS / "runbooks").glob("*.md"))], ids=lambda p: p.name)
def test_every_relative_link_points_to_an_existing_file_and_heading(page: Path) -> None:
    assert broken_links(page) == []


def test_the_link_check_sees_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n")
    page = tmp_path / "page.md"
    page.write_text("[a](missing.md) [b](other.md#nowhere) [c](other.md#other-page) [d](https://example.com)\n")
    assert broken_links(page) == ["page.md: missing.md (no such file)", "page.md: other.md#nowhere (no such heading)"]


def test_the_generated_tables_of_docs_match_the_settings_the_catalog_and_the_benchmark_reports() -> None:
    assert drifted() == [], "run `python -m docsgen`"


def test_the_drift_check_sees_a_table_edited_by_hand(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for page in PAGES:
        (docs / page.name).write_text(page.read_text(encoding="utf-8"), encoding="utf-8")
    configuration = docs / "configuration.md"
    text = configuration.read_text(encoding="utf-8")
    configuration.write_text(text.replace("`SERVICE_PORT` | int | `8000`", "`SERVICE_PORT` | int | `8080`"))
    assert drifted(docs) == ["docs/configuration.md: service-settings"]


def test_the_settings_table_names_every_variable_with_its_default() -> None:
    table = region((DOCS / "configuration.md").read_text(encoding="utf-8"), "service-settings")
    for name in ServiceSettings.model_fields:
        assert f"| `SERVICE_{name.upper()}` |" in table
    assert "| `SERVICE_LOAD_MAX_WORKERS` | int | `128` | >= 1, <= 1024 |" in table


def test_a_setting_without_a_description_stops_the_table() -> None:
    class Undescribed(BaseSettings):
        answer: int = Field(default=42)

    with pytest.raises(MissingDescription, match=r"Undescribed\.answer"):
        settings_table(Undescribed)


def test_a_page_without_its_region_markers_is_refused() -> None:
    with pytest.raises(RegionError):
        replace_region("# a page\n", "results", "| table |\n")


def snippet(page: Path, name: str) -> str:
    found = re.search(rf"<!-- snippet: {re.escape(name)} -->\n```\w+\n(.*?)```", page.read_text(), re.DOTALL)
    assert found is not None, f"{page.name} has no block marked <!-- snippet: {name} -->"
    return found.group(1)


def test_the_service_page_gives_the_load_endpoints_defaults_which_are_the_guides_body() -> None:
    page = DOCS / "service.md"
    body = re.search(r"-d '(\{.*?\})'", snippet(page, "load-defaults"))
    assert body is not None, "the load-defaults snippet has no -d body"
    documented = json.loads(body.group(1))
    assert documented == {"workers": 20, "duration_seconds": 30, "symbol": "TEST_CONTENTION"}  # the guide's body
    defaults = LoadRequest()
    assert documented == {key: getattr(defaults, key) for key in documented}
    text = page.read_text(encoding="utf-8")
    for field, value in defaults.model_dump().items():
        if field not in documented:
            given = re.search(rf"`{field}` \(`?([^)`:\s]+)", text)
            assert given is not None, f"docs/service.md does not give the default of {field}"
            assert json.loads(given.group(1)) == value, field


def test_the_service_page_states_the_limits_the_code_enforces() -> None:
    text = (DOCS / "service.md").read_text(encoding="utf-8")
    settings = ServiceSettings.model_construct()  # the defaults, whatever SERVICE_* the caller's environment sets
    assert f"1 to {MAX_NAME_LENGTH} characters of `A-Z a-z 0-9 . _ -`" in text
    assert f"| `workers` | 1 to {settings.load_max_workers} (`SERVICE_LOAD_MAX_WORKERS`)" in text
    assert f"| `duration_seconds` | 1 to {settings.load_max_duration_s:g} s (`SERVICE_LOAD_MAX_DURATION_S`)" in text
    assert f"at most {settings.max_body_bytes // 1024} KiB (`SERVICE_MAX_BODY_BYTES`)" in text
