"""The part of Prometheus's Go templates that annotations may use, checked and rendered exactly as Prometheus does.

Annotations may use `{{ $value }}`, `{{ $value | humanize }}`, `{{ $value | humanizePercentage }}` and
`{{ $labels.<name> }}`. Keeping to these lets the generated promtool tests predict every annotation byte for byte
(promtool compares them exactly), and lets validation prove that each `$labels.<name>` survives the alert's
aggregation: Prometheus expands annotations with the labels of the expression's result, not the rule's own labels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

_ACTION = re.compile(r"\{\{-?(.*?)-?\}\}", re.S)
_VALUE = re.compile(r"^\$value(?:\s*\|\s*(humanize|humanizePercentage))?$")
_LABEL = re.compile(r"^\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)$")


class TemplateError(ValueError):
    """An annotation uses template syntax outside the supported part."""


@dataclass(frozen=True)
class Action:
    """One `{{ … }}` of an annotation: the value (optionally through a function) or a label."""

    start: int
    end: int
    function: str | None = None  # "", "humanize" or "humanizePercentage" for $value
    label: str | None = None


def actions(text: str) -> tuple[Action, ...]:
    """The template actions of `text`, or TemplateError naming the first unsupported one."""
    found: list[Action] = []
    for match in _ACTION.finditer(text):
        body = match.group(1).strip()
        if (value := _VALUE.match(body)) is not None:
            found.append(Action(match.start(), match.end(), function=value.group(1) or ""))
        elif (label := _LABEL.match(body)) is not None:
            found.append(Action(match.start(), match.end(), label=label.group(1)))
        else:
            raise TemplateError(
                f"unsupported template action {match.group(0)!r}: use {{{{ $value }}}}, {{{{ $value | humanize }}}}, "
                "{{ $value | humanizePercentage }} or {{ $labels.<name> }}"
            )
    rest = _ACTION.sub("", text)
    if "{{" in rest or "}}" in rest:
        raise TemplateError("unbalanced '{{' or '}}'")
    return tuple(found)


def labels_used(text: str) -> tuple[str, ...]:
    return tuple(action.label for action in actions(text) if action.label is not None)


def render(text: str, value: float, labels: Mapping[str, str]) -> str:
    """The annotation as Prometheus expands it for a sample with `value` and `labels` (a missing label is empty)."""
    out: list[str] = []
    position = 0
    for action in actions(text):
        out.append(text[position : action.start])
        if action.label is not None:
            out.append(labels.get(action.label, ""))
        elif action.function == "humanize":
            out.append(humanize(value))
        elif action.function == "humanizePercentage":
            out.append(humanize_percentage(value))
        else:
            out.append(go_float(value))
        position = action.end
    out.append(text[position:])
    return "".join(out)


def go_float(value: float) -> str:
    """Go's `fmt.Sprint(float64)`: the shortest digits, in exponent form below 1e-4 and from 1e6 on (1e+06)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    shortest = Decimal(repr(abs(value))).normalize()
    exponent = shortest.adjusted()
    prefix = "-" if value < 0 else ""
    if exponent < -4 or exponent >= 6:
        digits = "".join(str(digit) for digit in shortest.as_tuple().digits)
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return prefix + format(shortest, "f")


def _go_g4(value: float) -> str:
    """Go's `%.4g` (Python's `.4g` agrees: same exponent rule, trailing zeros removed)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.4g}"


def humanize(value: float) -> str:
    """Prometheus's `humanize`: 4 significant digits with an SI prefix (1k, 2.5M, 3m)."""
    if value == 0 or math.isnan(value) or math.isinf(value):
        return _go_g4(value)
    prefix = ""
    if abs(value) >= 1:
        for candidate in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(value) < 1000:
                break
            prefix = candidate
            value /= 1000
    else:
        for candidate in ("m", "u", "n", "p", "f", "a", "z", "y"):
            if abs(value) >= 1:
                break
            prefix = candidate
            value *= 1000
    return _go_g4(value) + prefix


def humanize_percentage(value: float) -> str:
    """Prometheus's `humanizePercentage`: the value times 100 with 4 significant digits and `%`."""
    return _go_g4(value * 100) + "%"
