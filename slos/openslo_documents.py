"""The OpenSLO pieces both the SLO parser (openslo.py) and the alerting parser (openslo_alerting.py) use: the
strict base model, metadata, inline documents and references, and the problem list that names their fields."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from slos.errors import details, field_path, reason

_RFC1123 = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class OpenSLOModel(BaseModel):
    """Frozen, and refuses unknown fields: a typo is an error naming the field."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Metadata(OpenSLOModel):
    name: Annotated[str, Field(pattern=_RFC1123, max_length=63)]
    displayName: str | None = None
    labels: dict[str, str | list[str]] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class InlineDocument(OpenSLOModel):
    """An OpenSLO object written inline in another (a policy in an SLO, a condition or target in a policy)."""

    kind: str
    metadata: Metadata
    spec: dict[str, Any]


class PolicyRef(OpenSLOModel):
    alertPolicyRef: str


# Union members pydantic names in error locations, and what an entry of that list must be.
REFERENCE_UNIONS = {
    "PolicyRef": "expected {alertPolicyRef: <name>} or an inline AlertPolicy (kind, metadata, spec)",
    "InlineDocument": "expected a reference ({alertPolicyRef|conditionRef|targetRef: <name>}) or an inline document",
    "ConditionRef": "expected {conditionRef: <name>} or an inline AlertCondition (kind, metadata, spec)",
    "TargetRef": "expected {targetRef: <name>} or an inline AlertNotificationTarget (kind, metadata, spec)",
}


class Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, reason: str) -> None:
        self.items.append((where, reason))

    def validation(self, prefix: str, error: ValidationError, root: type[BaseModel] | None = None) -> None:
        for detail in details(error):
            tags = [part for part in detail["loc"] if part in REFERENCE_UNIONS]
            loc = field_path(part for part in detail["loc"] if part not in REFERENCE_UNIONS)
            text = reason(detail, root)
            if tags and detail["type"] in ("model_type", "dict_type"):
                text = REFERENCE_UNIONS[str(tags[0])]
            where = f"{prefix}.{loc}" if loc else prefix
            if (where, text) not in self.items:
                self.add(where, text)
