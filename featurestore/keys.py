"""Stable identities: advisory-lock keys, params digests and the names allowed in cache paths."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from featurestore.errors import InvalidName, InvalidParams

# Namespaces keep our keys apart from other applications' advisory locks in the same database.
LOCK_NAMESPACE = "featurestore.manifest"
COMPUTE_NAMESPACE = "featurestore.compute"
SCHEMA_NAMESPACE = "featurestore.schema"

MAX_NAME_LENGTH = 64
# Trading symbols look like AAPL, BRK.B, BTC-USD, ES_F, TEST_CONTENTION: letters, digits and . _ - only, starting
# with a letter or digit, so no name is ".", "..", hidden, or contains a separator or NUL.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_NAME = re.compile(NAME_PATTERN)
_DIGEST = re.compile(r"[0-9a-f]{64}")


def advisory_key(symbol: str, namespace: str = LOCK_NAMESPACE) -> int:
    """Signed 64-bit advisory-lock key: the first 8 bytes of sha256(namespace NUL symbol), big-endian.

    Never Python's hash(): it is salted per process, so two workers would lock different keys.
    """
    digest = hashlib.sha256(f"{namespace}\0{symbol}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def params_digest(params: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of `params` (sorted keys, no whitespace), as hex."""
    try:
        canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidParams(
            "params must be plain JSON (strings, finite numbers, booleans, None, lists and dicts with string keys), "
            f"since their canonical JSON names the frame: {exc}"
        ) from None
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_name(value: object, what: str = "symbol") -> str:
    """Return `value` if it is a safe symbol or feature name, else raise InvalidName saying why."""
    if not isinstance(value, str):
        raise InvalidName(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidName(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidName(f"{what} is {len(value)} characters long; the limit is {MAX_NAME_LENGTH}")
    if not _NAME.fullmatch(value):
        raise InvalidName(
            f"{what} {value[:80]!r} has characters outside A-Z a-z 0-9 . _ - or does not start with a letter or digit"
        )
    return value


def validate_digest(value: object) -> str:
    """Return `value` if it is a lowercase hex sha256 (a params digest or a file checksum), else raise InvalidName."""
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise InvalidName(f"expected 64 lowercase hex characters, got {str(value)[:80]!r}")
    return value


@dataclass(frozen=True)
class FrameKey:
    """The identity of one cached frame: (symbol, feature, params digest), every part validated."""

    symbol: str
    feature: str
    params_digest: str

    def __post_init__(self) -> None:
        validate_name(self.symbol, "symbol")
        validate_name(self.feature, "feature")
        validate_digest(self.params_digest)

    @classmethod
    def of(cls, symbol: str, feature: str, params: dict[str, Any]) -> FrameKey:
        return cls(symbol, feature, params_digest(params))
