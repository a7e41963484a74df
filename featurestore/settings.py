"""Settings of the feature core, read from FEATURESTORE_* environment variables when built."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from featurestore.metrics import DEFAULT_SYMBOL_CAP


class FeatureStoreSettings(BaseSettings):
    """Feature-store configuration; build it in main()/create_app(), never at import time."""

    model_config = SettingsConfigDict(env_prefix="FEATURESTORE_", frozen=True, extra="ignore")

    pg_dsn: SecretStr | None = Field(default=None, description="PostgreSQL DSN of the manifest; unset = DuckDB only")
    cache_dir: Path = Field(default=Path("~/.feature_cache"), description="Folder of Parquet files and manifest.duckdb")
    pg_pooler: Literal["auto", "none", "transaction"] = Field(
        default="auto",
        description="A connection pooler (PgBouncer) between us and PostgreSQL: transaction = pooler-safe statements "
        "(no prepared statements, settings per transaction); none = direct; auto = detect it when connecting",
    )
    pool_min_size: int = Field(default=1, ge=0, description="PostgreSQL connections each process keeps open")
    # 64 processes x 4 connections would pass PostgreSQL's default max_connections of 100.
    pool_max_size: int = Field(
        default=2, ge=1, description="Most PostgreSQL connections per process (processes x this <= max_connections)"
    )
    pool_timeout_s: float = Field(default=10.0, gt=0, description="Wait for a pooled connection before PoolTimeout")
    connect_timeout_s: float = Field(default=3.0, gt=0, description="Wait for a new PostgreSQL connection")
    lock_timeout_ms: int = Field(default=5000, gt=0, description="Advisory lock wait before LockTimeout")
    statement_timeout_ms: int = Field(default=30000, gt=0, description="Longest a manifest statement may run")
    compute_lease_s: float = Field(default=600.0, gt=0, description="Longest a compute may hold the single-flight")
    lease_ttl_s: float = Field(
        default=30.0, gt=0, description="A compute lease not renewed for this long is free (its holder died)"
    )
    replay_interval_s: float = Field(default=2.0, gt=0, description="How often fallback entries are retried")
    pool_sample_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="How often a worker samples its pool gauges in the multiprocess mode"
    )
    kept_tables_mb: int = Field(
        default=64,
        ge=0,
        le=65_536,
        description="Memory per process for the parsed tables of verified frames a hit returns without parsing their "
        "file again (0: parse at every hit); 64 workers x 64 MiB is 4 GiB at most",
    )
    symbol_label_cap: int = Field(
        default=DEFAULT_SYMBOL_CAP,
        ge=0,
        description="Distinct symbol label values per process and per metrics folder; the rest are exported as "
        "__other__",
    )

    def resolved_cache_dir(self) -> Path:
        return self.cache_dir.expanduser().resolve()

    def dsn(self) -> str | None:
        """The PostgreSQL DSN in clear text (for connecting only; log `redacted_dsn()` instead)."""
        return self.pg_dsn.get_secret_value() if self.pg_dsn is not None else None

    def redacted_dsn(self) -> str:
        return redact_dsn(self.dsn())


# Secret conninfo parameters by name, for a libpq too old to mark them; libpq marks its own (see secret_parameters).
KNOWN_SECRET_PARAMETERS = frozenset({"password", "sslpassword", "oauth_client_secret"})


@functools.cache
def secret_parameters() -> frozenset[str]:
    """Every conninfo parameter that holds a secret: those libpq's PQconndefaults marks for hiding (display
    character `*`: password, sslpassword, oauth_client_secret on libpq 18), plus the known ones."""
    try:
        marked = {option.keyword.decode() for option in pq.Conninfo.get_defaults() if option.dispchar == b"*"}
    except Exception:  # a libpq wrapper without conndefaults: the known names still hold
        marked = set()
    return KNOWN_SECRET_PARAMETERS | marked


def dsn_secrets(dsn: str | None) -> list[str]:
    """The values of the secret parameters `dsn` carries (URL or key=value form); empty when it has none or does
    not parse."""
    if not dsn:
        return []
    try:
        params = conninfo_to_dict(dsn)
    except Exception:  # unparseable: the URL form's password is where a secret usually hides
        password = urlsplit(dsn).password if "://" in dsn else None
        return [unquote(password)] if password else []
    return [str(params[name]) for name in sorted(secret_parameters()) if params.get(name)]


def redact_dsn(dsn: str | None) -> str:
    """`dsn` in key=value form without any secret parameter, safe for logs, error messages and /health.

    The conninfo is parsed and the secrets dropped, never searched for as text: a password that happens to be a word
    of the DSN (postgres) hides nothing else, and an unparseable DSN is not shown at all."""
    if not dsn:
        return "<none>"
    try:
        params = conninfo_to_dict(dsn)
    except Exception:
        return "<unparseable DSN>"
    secret = secret_parameters()
    return make_conninfo("", **{name: value for name, value in params.items() if name not in secret})
