"""The metric names a PromQL expression selects, read with the promql-parser the tests of the rules share."""

from __future__ import annotations

import promql_parser


def selectors(expr: str) -> list[str]:
    """The name of every vector selector of `expr`, in the order the parser walks them."""
    names: list[str] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.append(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names
