"""A scratch schema per PostgreSQL run, so that each run starts from an empty manifest and leaves nothing behind."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg


def dsn_with_schema(dsn: str, schema: str) -> str:
    """`dsn` with search_path set to `schema`, so the store's unqualified tables land there."""
    separator = "&" if "?" in dsn else "?"
    return f"{dsn}{separator}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def scratch_schema(dsn: str, prefix: str = "loadtest") -> Iterator[str]:
    """A fresh schema named `<prefix>_<pid>_<random>`, dropped afterwards; yields a DSN whose search_path is it."""
    schema = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield dsn_with_schema(dsn, schema)
    finally:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
