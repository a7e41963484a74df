"""Keeping secrets out of what the service says: response bodies and the log lines it writes.

Secrets are kept out at their source: a DSN is only ever shown through `redact_dsn` (parsed, every secret parameter
dropped) and the admin token is never shown. On top of that, two nets:

- `Redactor.scrub` (response bodies) masks what is shaped like a secret (`password=...`, `sslpassword=...`, the
  password of a `scheme://user:password@` URL) and nothing else: it never looks for the secrets' values, so a word
  that happens to equal the password (a symbol, `postgresql_manifest` when the password is `postgres`) comes back
  unchanged, and no endpoint answers differently for a guess that matches (no oracle).
- `Redactor.text` (log lines, startup errors) masks the same shapes, and the secrets' values where they stand as a
  whole token: a library's message that echoes a conninfo fragment is caught, a longer word that contains the
  password is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from featurestore.settings import FeatureStoreSettings, dsn_secrets, secret_parameters
from service.settings import ServiceSettings

MASK = "***"
# postgresql://user:password@host → postgresql://user:***@host.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]*(?P<tail>@)")
# Letters, digits and the other unreserved URL characters: a secret next to one of these is part of a longer token.
_TOKEN_CHARACTER = r"[\w.~-]"


def _keyword_pattern(names: Iterable[str]) -> re.Pattern[str]:
    """`name=value` for each secret parameter, in key=value DSNs and URL query strings (value quoted or not)."""
    alternatives = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?P<head>\b(?:{alternatives})\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&]+)", re.IGNORECASE)


def redactor_for(settings: ServiceSettings, store_settings: FeatureStoreSettings) -> Redactor:
    """Masks the service's secrets: the manifest DSN's secret parameters and the admin token."""
    token = settings.admin_token.get_secret_value() if settings.admin_token is not None else None
    return Redactor([*dsn_secrets(store_settings.dsn()), token])


class Redactor:
    """Masks what is shaped like a secret (`scrub`, `text`), and the known secrets as whole tokens (`text` only)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({secret for secret in secrets if secret and secret.strip()}, key=len, reverse=True)
        self._keyword = _keyword_pattern(secret_parameters())
        self._values = (
            re.compile(
                rf"(?<!{_TOKEN_CHARACTER})(?:{'|'.join(re.escape(secret) for secret in self.secrets)})"
                rf"(?!{_TOKEN_CHARACTER})"
            )
            if self.secrets
            else None
        )

    def shapes(self, value: str) -> str:
        """`value` with every DSN password and secret `name=value` masked; independent of the secrets' values."""
        value = _URL_PASSWORD.sub(rf"\g<head>{MASK}\g<tail>", value)
        return self._keyword.sub(rf"\g<head>{MASK}", value)

    def text(self, value: str) -> str:
        """A log line or an error message: the shapes, and the known secrets where they stand as a whole token."""
        if self._values is not None:
            value = self._values.sub(MASK, value)
        return self.shapes(value)

    def scrub(self, value: Any) -> Any:
        """A copy of a JSON-like response body with the shapes masked in every string (keys included)."""
        if isinstance(value, str):
            return self.shapes(value)
        if isinstance(value, dict):
            return {self.scrub(key): self.scrub(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(item) for item in value]
        return value
