"""The tree states facts, not history: no issue numbers, no "previous stop", no dates or times of day of a run in
code, comments, tests or docs (the commit log keeps the history). Test data that is a date (a quoted string, a
timestamp) is not a run date and passes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

SCANNED = ("featurestore", "slos", "generators", "service", "bench", "devstack", "docsgen", "docs", "tests",
           "rendered", "README.md", "Makefile", "Dockerfile", "pyproject.toml", "tox.ini")  # fmt: skip
MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
HISTORY = re.compile(
    r"\b[Ii]ssues?[ -]#?\d+\b"  # issue 7, issues 7 and 9, Issue #12, issue-7
    r"|\b[Pp]revious (?:stop|session)\b|\bthis session\b|\b[Pp]hase [A-Z]\b"
    r"|\b\d{1,2}:\d{2}(?::\d{2})? UTC\b"  # a time of day
    rf"|\b(?:{MONTHS}) \d{{4}}\b"  # read in November 2026
    r"|(?<![\"'\w-])\b20\d\d-[01]\d-[0-3]\d\b(?![T ]\d)"  # a date in prose, not a quoted value or a timestamp
)


def history_lines(path: Path) -> list[str]:
    """`path:line: text` for every line of `path` that names an issue, a session or a run date."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return []
    return [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), start=1)
        if HISTORY.search(line)
    ]


def scanned_files() -> list[Path]:
    files = []
    for name in SCANNED:
        path = REPO / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        files += [file for file in candidates if file.is_file() and "__pycache__" not in file.parts]
    return [file for file in files if file.resolve() != Path(__file__).resolve()]


def test_no_file_of_the_tree_names_an_issue_a_session_or_a_run_date() -> None:
    found = [line for path in scanned_files() for line in history_lines(path)]
    assert found == [], "history belongs in the commit log:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "line",
    [
        "# the targets of issue 7",
        "Issue 14 phase B compiles it",
        "see issue #12",
        "print each issue-7 target met or missed",
        "the previous stop's VM",
        "measured on 2026-11-29 at 21:47 UTC",
        "(read in November 2026)",
        "| 21.9 ms, 2026-11-26 |",
    ],
)
def test_the_history_pattern_sees_a_line_of_history(line: str, tmp_path: Path) -> None:
    assert HISTORY.search(line)


@pytest.mark.parametrize(
    "line",
    [
        'index=pd.date_range("2026-01-05", periods=8)',
        "`2026-01-15T10:30:00.000Z`, the guide's timestamp form",
        'calendar: {startTime: "2024-01-01 00:00:00", timeZone: UTC}',
        "pyrra#448 is open",
        "histogram_quantile over 5m",
    ],
)
def test_the_history_pattern_passes_facts_and_test_data(line: str) -> None:
    assert not HISTORY.search(line)
