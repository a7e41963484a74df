"""Keeping secrets out of what the service says: response bodies and the log lines it writes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from psycopg.conninfo import conninfo_to_dict

from featurestore.settings import FeatureStoreSettings
from service.settings import ServiceSettings

MASK = "***"
# postgresql://user:password@host → postgresql://user:***@host, and password=... in key=value DSNs.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]*(?P<tail>@)")
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def dsn_password(dsn: str | None) -> str | None:
    """The password a DSN carries (URL or key=value form), or None."""
    if not dsn:
        return None
    try:
        password = conninfo_to_dict(dsn).get("password")
    except Exception:  # unparseable: fall back to the URL form, which is where a password usually hides
        password = urlsplit(dsn).password if "://" in dsn else None
        password = unquote(password) if password else None
    return str(password) if password else None


def redactor_for(settings: ServiceSettings, store_settings: FeatureStoreSettings) -> Redactor:
    """Masks the service's secrets: the manifest DSN's password and the admin token."""
    token = settings.admin_token.get_secret_value() if settings.admin_token is not None else None
    return Redactor([dsn_password(store_settings.dsn()), token])


class Redactor:
    """Replaces known secrets, and anything shaped like a DSN password, with `***`."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        value = _URL_PASSWORD.sub(rf"\g<head>{MASK}\g<tail>", value)
        return _KEYWORD_PASSWORD.sub(rf"\g<head>{MASK}", value)

    def scrub(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string (keys included) redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.scrub(key): self.scrub(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(item) for item in value]
        return value
