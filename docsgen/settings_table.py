"""The settings table of docs/configuration.md: one row per field of a pydantic-settings class, from the class itself
(environment variable, type, default, allowed values, the field's description)."""

from __future__ import annotations

import enum
import types
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings


class MissingDescription(ValueError):
    """A settings field without a description: the table would have an empty cell."""


_TYPE_NAMES: dict[Any, str] = {
    SecretStr: "secret",
    Path: "path",
    bool: "bool",
    int: "int",
    float: "float",
    str: "string",
}


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return ", ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(arg) for arg in typing.get_args(annotation) if arg is not type(None)]
        return " or ".join(names)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return ", ".join(f"`{member.value}`" for member in annotation)
    return _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


_BOUNDS = ((annotated_types.Ge, "ge", ">="), (annotated_types.Gt, "gt", ">"), (annotated_types.Le, "le", "<="),
           (annotated_types.Lt, "lt", "<"))  # fmt: skip


def _allowed(field: FieldInfo) -> str:
    found = []
    for item in field.metadata:
        for cls, attribute, sign in _BOUNDS:
            if isinstance(item, cls):
                found.append(f"{sign} {_value(getattr(item, attribute)).strip('`')}")
        pattern = getattr(item, "pattern", None)
        if pattern:
            found.append(f"`{pattern}`")
    return ", ".join(found)


def settings_rows(cls: type[BaseSettings]) -> list[tuple[str, str, str, str, str]]:
    """(variable, type, default, allowed, description) for every field of `cls`, in declaration order."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    rows = []
    for name, field in cls.model_fields.items():
        if not field.description:
            raise MissingDescription(f"{cls.__name__}.{name} has no description (Field(description=...))")
        rows.append(
            (
                f"`{prefix}{name.upper()}`",
                _type_name(field.annotation),
                _value(field.get_default()),
                _allowed(field),
                field.description,
            )
        )
    return rows


def settings_table(cls: type[BaseSettings]) -> str:
    """The Markdown table of `cls`'s fields, ending with a newline."""
    lines = ["| variable | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in settings_rows(cls)]
    return "\n".join(lines) + "\n"
