"""Advisory-lock keys are stable across processes and hash seeds; names that could escape the cache are refused."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from featurestore.errors import FeatureStoreError, InvalidName, InvalidParams
from featurestore.keys import (
    COMPUTE_NAMESPACE,
    FrameKey,
    advisory_key,
    params_digest,
    validate_name,
)
from tests.conftest import REPO

# Computed once with advisory_key() and frozen here: a change of derivation breaks running fleets (two versions of
# the code would lock different keys for the same symbol), so it must fail a test.
KEY_VECTORS = {
    "AAPL": 3298835963521491488,
    "BRK.B": 8878670527824995943,
    "TEST_CONTENTION": -8045253613478187489,
}


@pytest.mark.parametrize(("symbol", "expected"), KEY_VECTORS.items())
def test_advisory_key_matches_the_frozen_vector(symbol: str, expected: int) -> None:
    assert advisory_key(symbol) == expected


def test_advisory_keys_are_signed_64_bit_and_namespaced() -> None:
    for symbol in KEY_VECTORS:
        assert -(2**63) <= advisory_key(symbol) < 2**63
    assert advisory_key("AAPL", COMPUTE_NAMESPACE) != advisory_key("AAPL")
    assert len({advisory_key(symbol) for symbol in KEY_VECTORS}) == len(KEY_VECTORS)


def test_another_process_with_another_hash_seed_derives_the_same_keys() -> None:
    script = (
        "from featurestore.keys import advisory_key as k; print(*(k(s) for s in ['AAPL', 'BRK.B', 'TEST_CONTENTION']))"
    )
    seen = set()
    for seed in ("1", "4242"):
        result = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        seen.add(result.stdout.strip())
    assert seen == {" ".join(str(KEY_VECTORS[s]) for s in ("AAPL", "BRK.B", "TEST_CONTENTION"))}


def test_params_digest_ignores_key_order_and_distinguishes_values() -> None:
    assert params_digest({"a": 1, "b": [1, 2]}) == params_digest({"b": [1, 2], "a": 1})
    assert params_digest({"a": 1}) != params_digest({"a": 2})
    assert params_digest({"a": 1}) != params_digest({"a": "1"})
    assert params_digest({}) == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


@pytest.mark.parametrize(
    "params",
    [{"x": float("nan")}, {"x": float("inf")}, {"x": object()}, {"x": {1, 2}}, {("a", "b"): 1}],
    ids=["nan", "infinity", "an object", "a set", "a tuple key"],
)
def test_params_that_are_not_canonical_json_are_refused_as_invalid_params_saying_so(params: dict[Any, object]) -> None:
    with pytest.raises(InvalidParams, match=r"^params must be plain JSON \(") as raised:
        params_digest(params)
    assert not isinstance(raised.value, InvalidName)
    assert isinstance(raised.value, FeatureStoreError) and isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    "name",
    ["../etc", "..", ".", "a/b", "a\\b", "/abs", "nul\0byte", "x" * 10_000, "", ".hidden", "-flag", "sp ace", "é"],
    ids=[
        "parent traversal", "dot dot", "dot", "slash", "backslash", "absolute", "NUL", "10,000 characters", "empty",
        "hidden", "leading dash", "space", "non-ascii",
    ],
)  # fmt: skip
def test_a_name_that_could_escape_or_confuse_the_cache_folder_is_refused(name: str) -> None:
    with pytest.raises(InvalidName):
        validate_name(name)
    with pytest.raises(InvalidName):
        FrameKey.of(name, "returns", {})
    with pytest.raises(InvalidName):
        FrameKey.of("AAPL", name, {})


@pytest.mark.parametrize("name", ["AAPL", "BRK.B", "BTC-USD", "ES_F", "TEST_CONTENTION", "x" * 64])
def test_trading_symbols_are_accepted(name: str) -> None:
    assert validate_name(name) == name


def test_a_non_string_name_is_refused() -> None:
    with pytest.raises(InvalidName, match="string"):
        validate_name(42)
