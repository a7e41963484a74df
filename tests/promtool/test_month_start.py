"""The monthly period start's mutants that tests/promtool/mutant_survivors.py calls equivalent read as the original
at every moment tried: each minute of the two days around every month's turn of 1970-1973 (every pair of month
lengths, a leap February among them) and every 10 minutes between. The record is emulated in numpy (day_of_month,
days_in_month, `%` of positive numbers, `< bool`), itself checked against the Python model of the period start."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt

from generators import calendar, naming
from generators.timeslice_tests import period_start
from slos.models import Calendar
from tests.promtool import mutants
from tests.promtool.mutant_survivors import MONTH_START_EQUIVALENT, equivalent

# The OpenSLO example's calendar (tests/slos/test_openslo_examples.py: CALENDAR_MONTH): New York, day 1 at 12:00.
NEW_YORK_MONTH = Calendar(duration="1M", start="2022-01-01 12:00:00", time_zone="America/New_York")
TARGET = "openslo-calendar-month"
Moments = npt.NDArray[np.float64]


def _day_of_month(x: Moments) -> npt.NDArray[np.int64]:
    moment = np.trunc(x).astype(np.int64).astype("datetime64[s]")
    return np.asarray((moment.astype("datetime64[D]") - moment.astype("datetime64[M]")).astype(np.int64) + 1)


def _days_in_month(x: Moments) -> npt.NDArray[np.int64]:
    month = np.trunc(x).astype(np.int64).astype("datetime64[s]").astype("datetime64[M]")
    return np.asarray(((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(np.int64))


def emulate(expr: str, moments: Moments) -> Any:
    """The record's value at each moment: its PromQL read as numpy (every operand here is positive, where PromQL's
    `%` and Python's agree)."""
    python = expr.replace("vector(time())", "T").replace("time()", "T").replace("vector(", "(")
    python = python.replace("day_of_month(", "dom(").replace("days_in_month(", "dim(").replace("< bool", "<")
    return eval(python, {"dom": _day_of_month, "dim": _days_in_month, "T": moments})  # our own generated rule


def moments() -> Moments:
    """Each minute of the two days around every UTC month's turn (the zone's a few hours off it) and every 10
    minutes between, from a day after the epoch (`time() - 5h` stays positive) through the first month of 1974."""
    turns = np.arange("1970-01", "1974-02", dtype="datetime64[M]").astype("datetime64[s]").astype(np.int64)
    around = (turns[:, None] + np.arange(-86400, 86400, 60)[None, :]).ravel()
    every = np.unique(np.concatenate([around, np.arange(turns[0], turns[-1], 600)]))
    return every[every >= 86400].astype(np.float64)


def start_mutants() -> tuple[str, list[mutants.Mutant]]:
    expr = calendar.period_start(NEW_YORK_MONTH)
    rules = {"groups": [{"name": "month", "rules": [{"record": naming.CALENDAR_START_RECORD, "expr": expr}]}]}
    return expr, mutants.mutants(rules, target=TARGET)


def test_the_emulated_record_is_the_period_start_the_python_model_computes() -> None:
    expr, _ = start_mutants()
    at = moments()[::97]  # every moment of the model is a Python call: a spread of a few thousand
    model = np.array([period_start(NEW_YORK_MONTH, m) for m in at])
    assert np.array_equal(emulate(expr, at), model)


def test_every_start_mutant_called_equivalent_reads_as_the_original_at_every_moment_tried() -> None:
    expr, found = start_mutants()
    called = [m for m in found if re.search(MONTH_START_EQUIVALENT, m.key)]
    assert len(called) == 14 and all(equivalent(m) for m in called), [m.key for m in called]
    at = moments()
    original = emulate(expr, at)
    differ = {m.key: float(at[np.argmax(emulate(m.value, at) != original)]) for m in called
              if not np.array_equal(emulate(m.value, at), original)}  # fmt: skip
    assert differ == {}
