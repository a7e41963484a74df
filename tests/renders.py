"""One computation per distinct render in a test session.

`generators.render.render` is a pure function from (specs, profile, command, retention) to file texts, and many
tests render the same committed specs (the CLI tests, the promtool runs of the test profile, the end-to-end bundle).
`cached_render` computes each distinct render once and hands every caller its own copy, so a test that edits what it
got cannot change what the next one sees. A render that raises is not cached: the next caller raises again.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from generators.profile import Profile
from generators.render import render
from slos.loader import SpecSet

RenderKey = tuple[str, str, str, str]
_DONE: dict[RenderKey, Mapping[str, str]] = {}


def render_key(specs: SpecSet, profile: Profile, command: str, retention: str | None = None) -> RenderKey:
    """What a render depends on: every loaded spec with its path (headers name it), the profile, the command in the
    headers, and the retention (the profile's when not given)."""
    return (repr(specs), repr(profile), command, retention or profile.retention)


def cached_render(specs: SpecSet, profile: Profile, command: str, retention: str | None = None) -> dict[str, str]:
    """`render(...)`, computed once per distinct input in this process; a fresh dict for every caller."""
    key = render_key(specs, profile, command, retention)
    if key not in _DONE:
        _DONE[key] = MappingProxyType(render(specs, profile, command, retention))
    return dict(_DONE[key])
