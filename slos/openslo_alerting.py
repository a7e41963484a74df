"""OpenSLO v1 alerting: `AlertPolicy`, `AlertCondition` (kind `burnrate`) and `AlertNotificationTarget` documents,
and the `alertPolicies` of an SLO, resolved into the native `AlertPolicy` / `NotificationTarget` models.

```yaml
apiVersion: openslo/v1
kind: AlertNotificationTarget
metadata: {name: payments-pager}
spec: {target: pagerduty, description: Payments on-call}
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: page-fast-burn}
spec:
  alertWhenBreaching: true
  alertWhenResolved: true
  conditions:
    - conditionRef: fast-burn              # an AlertCondition document, or inline:
    - kind: AlertCondition
      metadata: {name: slow-burn}
      spec: {severity: ticket, condition: {kind: burnrate, op: gt, threshold: 1, lookbackWindow: 3d, alertAfter: 1h}}
  notificationTargets:
    - targetRef: payments-pager            # an AlertNotificationTarget document, or inline (kind, metadata, spec)
```

An SLO lists its policies as `alertPolicies: [{alertPolicyRef: page-fast-burn}]` or inline AlertPolicy documents.
Refused with the document, the field and the reason: conditions of another kind than burnrate, `op: lt`/`lte` (a
burn-rate alert fires above its threshold), `alertWhenBreaching: false`, references to documents the file lacks, a
name defined twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from slos.models import AlertPolicy, BurnCondition, Duration, NotificationTarget
from slos.openslo_documents import InlineDocument as _Inline
from slos.openslo_documents import PolicyRef, Problems

KINDS = ("AlertPolicy", "AlertCondition", "AlertNotificationTarget")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConditionType(_Model):
    kind: str
    op: Literal["gt", "gte", "lt", "lte"]
    threshold: Annotated[float, Field(gt=0)]
    lookbackWindow: Duration
    alertAfter: Duration = "0s"

    @model_validator(mode="after")
    def _burn_rate_above(self) -> ConditionType:
        if self.kind.lower() != "burnrate":
            raise ValueError(f"only burnrate conditions are supported, not {self.kind!r}")
        if self.op in ("lt", "lte"):
            raise ValueError(f"a burn-rate alert fires above its threshold: op {self.op!r} is not supported, use gt")
        return self


class AlertConditionSpec(_Model):
    description: str = ""
    severity: str = Field(min_length=1)
    condition: ConditionType


class AlertNotificationTargetSpec(_Model):
    description: str = ""
    target: str = Field(min_length=1)


class ConditionRef(_Model):
    conditionRef: str


class TargetRef(_Model):
    targetRef: str


class AlertPolicySpec(_Model):
    description: str = ""
    alertWhenNoData: bool = False
    alertWhenBreaching: bool = True
    alertWhenResolved: bool = True
    conditions: list[ConditionRef | _Inline] = Field(min_length=1)
    notificationTargets: list[TargetRef | _Inline] = Field(min_length=1)

    @model_validator(mode="after")
    def _breaching(self) -> AlertPolicySpec:
        if not self.alertWhenBreaching:
            raise ValueError("alertWhenBreaching: false is not supported: a policy alerts when its condition holds")
        return self


SPEC_MODELS: dict[str, type[BaseModel]] = {
    "AlertPolicy": AlertPolicySpec,
    "AlertCondition": AlertConditionSpec,
    "AlertNotificationTarget": AlertNotificationTargetSpec,
}
Add = Callable[[str, str], None]


def _messages(prefix: str, error: ValidationError, add: Add) -> None:
    problems = Problems()
    problems.validation(prefix, error)
    for where, reason in problems.items:
        add(where, reason)


class Registry:
    """The alerting documents of one file by name, resolved into native models as SLOs refer to them."""

    def __init__(self, add: Add) -> None:
        self.add = add
        self.documents: dict[str, dict[str, tuple[str, BaseModel]]] = {kind: {} for kind in KINDS}
        self.targets: dict[str, NotificationTarget] = {}
        self.policies: dict[str, AlertPolicy] = {}

    def register(self, kind: str, name: str, where: str, spec: BaseModel) -> None:
        if name in self.documents[kind]:
            self.add(f"{where}.metadata.name", f"{kind} {name!r} is defined twice in this file")
            return
        self.documents[kind][name] = (where, spec)

    def _inline(self, kind: str, inline: _Inline, where: str) -> tuple[str, BaseModel] | None:
        if inline.kind != kind:
            self.add(f"{where}.kind", f"expected {kind}, got {inline.kind!r}")
            return None
        try:
            return inline.metadata.name, SPEC_MODELS[kind].model_validate(inline.spec)
        except ValidationError as exc:
            _messages(f"{where}.spec", exc, self.add)
            return None

    def _resolve(self, kind: str, item: BaseModel, where: str) -> tuple[str, BaseModel, str] | None:
        if isinstance(item, _Inline):
            found = self._inline(kind, item, where)
            return (found[0], found[1], where) if found else None
        ref = getattr(item, {"AlertCondition": "conditionRef", "AlertNotificationTarget": "targetRef"}[kind])
        if ref not in self.documents[kind]:
            field = "conditionRef" if kind == "AlertCondition" else "targetRef"
            self.add(f"{where}.{field}", f"no {kind} named {ref!r} in this file")
            return None
        source, spec = self.documents[kind][ref]
        return ref, spec, source

    def _condition(self, item: ConditionRef | _Inline, where: str) -> BurnCondition | None:
        found = self._resolve("AlertCondition", item, where)
        if found is None:
            return None
        name, spec, _ = found
        assert isinstance(spec, AlertConditionSpec)
        condition = spec.condition
        return BurnCondition(
            name=name,
            description=spec.description,
            severity=spec.severity,
            op="gte" if condition.op == "gte" else "gt",
            threshold=condition.threshold,
            lookback_window=condition.lookbackWindow,
            alert_after=condition.alertAfter,
        )

    def _target(self, item: TargetRef | _Inline, where: str) -> str | None:
        found = self._resolve("AlertNotificationTarget", item, where)
        if found is None:
            return None
        name, spec, _ = found
        assert isinstance(spec, AlertNotificationTargetSpec)
        self.targets.setdefault(name, NotificationTarget(name=name, target=spec.target, description=spec.description))
        return name

    def policy(self, name: str, spec: AlertPolicySpec, where: str) -> str | None:
        """The native policy `name` (built once), or None when one of its parts is missing (each reported)."""
        if name in self.policies:
            return name
        conditions = [self._condition(c, f"{where}.conditions[{i}]") for i, c in enumerate(spec.conditions)]
        targets = [self._target(t, f"{where}.notificationTargets[{i}]") for i, t in enumerate(spec.notificationTargets)]
        if None in conditions or None in targets:
            return None
        self.policies[name] = AlertPolicy(
            name=name,
            description=spec.description,
            conditions=tuple(c for c in conditions if c is not None),
            notify=tuple(t for t in targets if t is not None),
            send_resolved=spec.alertWhenResolved,
            alert_when_no_data=spec.alertWhenNoData,
        )
        return name

    def slo_policies(self, items: list[PolicyRef | _Inline], where: str) -> list[str]:
        names: list[str] = []
        for index, item in enumerate(items):
            at = f"{where}[{index}]"
            if isinstance(item, PolicyRef):
                if item.alertPolicyRef not in self.documents["AlertPolicy"]:
                    self.add(f"{at}.alertPolicyRef", f"no AlertPolicy named {item.alertPolicyRef!r} in this file")
                    continue
                source, spec = self.documents["AlertPolicy"][item.alertPolicyRef]
                assert isinstance(spec, AlertPolicySpec)
                name = self.policy(item.alertPolicyRef, spec, f"{source}.spec")
            else:
                found = self._inline("AlertPolicy", item, at)
                if found is None:
                    continue
                policy_spec = found[1]
                assert isinstance(policy_spec, AlertPolicySpec)
                name = self.policy(found[0], policy_spec, f"{at}.spec")
            if name is not None:
                names.append(name)
        return names
