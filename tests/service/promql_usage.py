"""What a PromQL expression uses, checked against what an exporter exposes: for the service's contract test.

`LabelUse(exposed)` knows, per metric name, the label names its series carry (a scrape's, plus the target labels
Prometheus adds, plus recording-rule outputs). `problems(text)` walks an expression parsed by promql_parser and names
every metric that is not there, every matcher label the metric does not carry, every `le` value (or regex) the
histogram does not expose, and every grouping label (by / without / on / ignoring / group_left) its input cannot have.
`outputs(text)` is the set of label names the expression's result can carry (an over-approximation: a binary
operation keeps the union of its sides), which is how a recording rule's output labels are known.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

import promql_parser as pp

# Added by Prometheus at scrape time: job and instance always, namespace by Kubernetes discovery (ServiceMonitor,
# PodMonitor); a plain static target has none, and grouping by an absent label is grouping by "".
TARGET_LABELS = frozenset({"job", "instance", "namespace"})
KEEPS_INPUT_LABELS = frozenset({"topk", "bottomk", "limitk", "limit_ratio"})


def selector_name(selector: pp.VectorSelector) -> str | None:
    if selector.name:
        return str(selector.name)
    for matcher in selector.matchers.matchers:
        if matcher.name == "__name__" and matcher.op == pp.MatchOp.Equal:
            return str(matcher.value)
    return None


def matchers_of(selector: pp.VectorSelector) -> Iterator[pp.Matcher]:
    yield from selector.matchers.matchers
    for group in selector.matchers.or_matchers:
        yield from group


def children(node: object) -> list[object]:
    if isinstance(node, pp.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, pp.AggregateExpr):
        return [node.expr] + ([node.param] if node.param is not None else [])
    if isinstance(node, pp.Call):
        return list(node.args)
    if isinstance(node, pp.MatrixSelector):
        return [node.vector_selector]
    if isinstance(node, pp.SubqueryExpr | pp.ParenExpr | pp.UnaryExpr):
        return [node.expr]
    return []


class LabelUse:
    def __init__(self, exposed: Mapping[str, set[str]], bucket_bounds: Mapping[str, set[str]]) -> None:
        self.labels = {name: set(labels) | TARGET_LABELS for name, labels in exposed.items()}
        self.bucket_bounds = bucket_bounds  # `x_bucket` → its `le` values as the scrape writes them

    def add_record(self, name: str, labels: set[str]) -> None:
        self.labels[name] = self.labels.get(name, set()) | labels

    def outputs(self, text: str) -> set[str]:
        return self._out(pp.parse(text))

    def _out(self, node: object) -> set[str]:
        if isinstance(node, pp.VectorSelector):
            return set(self.labels.get(selector_name(node) or "", set()))
        if isinstance(node, pp.MatrixSelector):
            return self._out(node.vector_selector)
        if isinstance(node, pp.SubqueryExpr | pp.ParenExpr | pp.UnaryExpr):
            return self._out(node.expr)
        if isinstance(node, pp.AggregateExpr):
            inner = self._out(node.expr)
            op = str(node.op)
            if op in KEEPS_INPUT_LABELS:
                return inner
            extra = {node.param.val} if op == "count_values" and isinstance(node.param, pp.StringLiteral) else set()
            if node.modifier is None:
                return extra
            if node.modifier.type == pp.AggModifierType.By:
                return set(node.modifier.labels) | extra
            return inner - set(node.modifier.labels) | extra
        if isinstance(node, pp.Call):
            return self._call_out(node)
        if isinstance(node, pp.BinaryExpr):
            return self._out(node.lhs) | self._out(node.rhs)
        return set()

    def _call_out(self, node: pp.Call) -> set[str]:
        name, args = node.func.name, list(node.args)
        if name == "histogram_quantile":
            return self._out(args[1]) - {"le"}
        if name in ("label_replace", "label_join"):
            return self._out(args[0]) | {args[1].val}
        if name in ("absent", "absent_over_time"):
            selector = args[0].vector_selector if isinstance(args[0], pp.MatrixSelector) else args[0]
            if isinstance(selector, pp.VectorSelector):
                return {m.name for m in matchers_of(selector) if m.op == pp.MatchOp.Equal and m.name != "__name__"}
            return set()
        found: set[str] = set()
        for arg in args:
            found |= self._out(arg)
        return found

    def problems(self, text: str) -> list[str]:
        try:
            tree = pp.parse(text)
        except Exception as exc:  # promql_parser raises ValueError or its own types
            return [f"does not parse: {exc}"]
        return list(self._problems(tree))

    def _problems(self, node: object) -> Iterator[str]:
        if isinstance(node, pp.VectorSelector):
            yield from self._selector_problems(node)
        elif isinstance(node, pp.AggregateExpr) and node.modifier is not None:
            available = self._out(node.expr)
            for label in node.modifier.labels:
                if label not in available:
                    yield f"{node.op} {node.modifier} : the input has no label {label!r}"
        elif isinstance(node, pp.BinaryExpr) and node.modifier is not None:
            available = self._out(node.lhs) | self._out(node.rhs)
            matching = node.modifier.matching
            used = [*(matching.labels if matching is not None else []), *(node.modifier.group_labels or [])]
            for label in used:
                if label not in available:
                    yield f"vector matching on {label!r}: neither side has that label"
        for child in children(node):
            yield from self._problems(child)

    def _selector_problems(self, selector: pp.VectorSelector) -> Iterator[str]:
        name = selector_name(selector)
        if name is None or name not in self.labels:
            yield f"metric {name!r} is neither in the scrape nor a recording rule"
            return
        for matcher in matchers_of(selector):
            if matcher.name == "__name__":
                continue
            if matcher.name not in self.labels[name]:
                yield f"{name}{{{matcher.name}…}}: {name} has no label {matcher.name!r}"
            elif matcher.name == "le" and name in self.bucket_bounds:
                yield from self._bucket_problems(name, matcher)

    def _bucket_problems(self, name: str, matcher: pp.Matcher) -> Iterator[str]:
        bounds = self.bucket_bounds[name]
        if matcher.op == pp.MatchOp.Equal:
            matched, op = matcher.value in bounds, "="
        elif matcher.op == pp.MatchOp.Re:  # PromQL regexes are anchored
            matched, op = any(re.fullmatch(matcher.value, bound) for bound in bounds), "=~"
        else:
            return
        if not matched:
            yield f'{name}{{le{op}"{matcher.value}"}} matches none of the scrape\'s bounds {sorted(bounds)}'
