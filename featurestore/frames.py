"""What `compute()` may return, and its conversion, once, to the `pyarrow.Table` the cache stores and returns.

    pyarrow.Table        as is
    pyarrow.RecordBatch  one-batch table, no copy
    polars.DataFrame     DataFrame.to_arrow(): no copy for most column types
    pandas.DataFrame     pyarrow.Table.from_pandas(): the index kept as in pandas' own round trip; numeric columns
                         without nulls are wrapped, the rest converted
    anything else        TypeError naming the type, raised before anything is written

pandas and polars are never imported here: a value can only be one of their frames if its library is already loaded,
so `sys.modules` tells. Neither is a dependency of the package.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable
from typing import Any

import pyarrow as pa

ACCEPTED = "a pyarrow.Table, a pandas DataFrame or a polars DataFrame"


def _frame_class(module: str) -> type | None:
    loaded = sys.modules.get(module)
    found = getattr(loaded, "DataFrame", None) if loaded is not None else None
    return found if isinstance(found, type) else None


def _class_name(kind: type) -> str:
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def as_table(value: object) -> pa.Table:
    """`value` as a pyarrow.Table (see the module docstring); TypeError naming the type for anything else."""
    if isinstance(value, pa.Table):
        return value
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value])
    polars_frame = _frame_class("polars")
    if polars_frame is not None and isinstance(value, polars_frame):
        table = getattr(value, "to_arrow")()  # noqa: B009 (polars is not imported, so not typed, here)
        assert isinstance(table, pa.Table)
        return table
    pandas_frame = _frame_class("pandas")
    if pandas_frame is not None and isinstance(value, pandas_frame):
        try:
            return pa.Table.from_pandas(value)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise TypeError(f"compute() returned a pandas DataFrame that pyarrow cannot convert: {exc}") from exc
    raise TypeError(f"compute() must return {ACCEPTED}, got {_class_name(type(value))}")


def refuse_by_annotation(compute: Callable[[], object]) -> None:
    """TypeError before `compute` runs when its return annotation is a class that cannot be a frame (say `dict`).

    Unannotated callables (lambdas), unresolvable annotations, unions and generics pass: their value is checked.
    """
    try:
        annotation = typing.get_type_hints(compute).get("return")
    except Exception:  # forward references to modules not imported, builtins without hints, callable objects
        return
    if not isinstance(annotation, type) or annotation is object:
        return
    if issubclass(annotation, pa.Table | pa.RecordBatch) or _is_frame_class(annotation):
        return
    raise TypeError(f"compute() is annotated to return {_class_name(annotation)}; it must return {ACCEPTED}")


def _is_frame_class(annotation: type[Any]) -> bool:
    return annotation.__name__ == "DataFrame" and annotation.__module__.split(".")[0] in {"pandas", "polars"}
