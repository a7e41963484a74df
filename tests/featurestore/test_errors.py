"""The error kinds label manifest_insert_errors_total: every kind the code names is a catalog value."""

from __future__ import annotations

import pytest

from featurestore import errors, metrics


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (errors.LockTimeout("x"), "lock_timeout"),
        (errors.PoolTimeout("x"), "pool_timeout"),
        (errors.BackendUnavailable("x"), "unavailable"),
        (errors.ManifestLocked("x"), "unavailable"),
        (RuntimeError("x"), "other"),
    ],
)
def test_an_exception_maps_to_a_bounded_error_label(exc: BaseException, kind: str) -> None:
    assert errors.error_kind(exc) == kind
    assert kind in metrics.INSERT_ERRORS
