"""Marked regions of a Markdown page: `<!-- generated: NAME -->` ... `<!-- end generated: NAME -->`."""

from __future__ import annotations

import re


class RegionError(ValueError):
    """A page lacks the markers of a region, or holds them twice."""


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- generated: {re.escape(name)} [^\n]*-->\n)(.*?)(<!-- end generated: {re.escape(name)} -->)", re.DOTALL
    )


def region(page: str, name: str) -> str:
    """The text between the markers of `name`."""
    found = _pattern(name).findall(page)
    if len(found) != 1:
        raise RegionError(f"expected one region marked <!-- generated: {name} ... -->, found {len(found)}")
    return str(found[0][1])


def replace_region(page: str, name: str, body: str) -> str:
    """`page` with the region `name` holding `body` (which ends with a newline)."""
    region(page, name)
    return _pattern(name).sub(lambda match: match.group(1) + body + match.group(3), page)
