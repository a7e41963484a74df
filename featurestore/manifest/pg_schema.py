"""The PostgreSQL manifest's schema and SQL text: tables, the insert function, lease statements.

Why the insert is a plpgsql function and not one statement with a locking CTE: under READ COMMITTED a statement reads
with the snapshot taken when it *started*, i.e. before it waited for the advisory lock, so `max(version) + 1` in the
same statement misses the rows the previous lock holder committed meanwhile. Measured on this machine: 8 threads x 50
inserts on one symbol gave 300 unique violations on (symbol, version) out of 400. Each statement inside a VOLATILE
function takes a fresh snapshot, so the function reads after the lock and stays one round trip
(`SELECT * FROM manifest_insert_v2(...)`): 400 of 400, versions 1..400, about 0.05 ms more than a bare INSERT.

Tables are created unqualified, in the first schema of the connection's search_path. Upgrades: a schema that has the
tables but not this version's function gets the function (`ensure_schema`); an older function (`manifest_insert_v1`,
which also took a benchmark-only global key and hold) is left in place for clients of the previous release.
"""

from __future__ import annotations

import psycopg

from featurestore.keys import SCHEMA_NAMESPACE, advisory_key

INSERT_FUNCTION = "manifest_insert_v2"
SCHEMA_LOCK_KEY = advisory_key("schema-v1", SCHEMA_NAMESPACE)

_TABLES = """
CREATE TABLE IF NOT EXISTS manifest_entries (
    symbol text NOT NULL,
    feature text NOT NULL,
    params_digest text NOT NULL,
    version bigint NOT NULL,
    path text NOT NULL,
    rows bigint NOT NULL CHECK (rows >= 0),
    bytes bigint NOT NULL CHECK (bytes >= 0),
    sha256 text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT manifest_entries_key UNIQUE (symbol, feature, params_digest),
    CONSTRAINT manifest_entries_symbol_version UNIQUE (symbol, version)
);
CREATE TABLE IF NOT EXISTS compute_leases (
    symbol text NOT NULL,
    feature text NOT NULL,
    params_digest text NOT NULL,
    owner text NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT compute_leases_key PRIMARY KEY (symbol, feature, params_digest)
);
"""

INSERT_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {INSERT_FUNCTION}(
    p_symbol_key bigint, p_replace boolean,
    p_symbol text, p_feature text, p_params_digest text, p_path text, p_rows bigint, p_bytes bigint,
    p_sha256 text, p_created_at timestamptz)
RETURNS TABLE (o_inserted boolean, o_version bigint, o_path text, o_rows bigint, o_bytes bigint, o_sha256 text,
               o_created_at timestamptz, o_lock_wait_ms double precision)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_version bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(p_symbol_key);
    o_lock_wait_ms := extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000;
    SELECT coalesce(max(m.version), 0) + 1 INTO v_version FROM manifest_entries m WHERE m.symbol = p_symbol;
    IF p_replace THEN
        DELETE FROM manifest_entries m
        WHERE m.symbol = p_symbol AND m.feature = p_feature AND m.params_digest = p_params_digest;
    END IF;
    INSERT INTO manifest_entries AS m (symbol, feature, params_digest, version, path, rows, bytes, sha256, created_at)
    VALUES (p_symbol, p_feature, p_params_digest, v_version, p_path, p_rows, p_bytes, p_sha256,
            coalesce(p_created_at, now()))
    ON CONFLICT ON CONSTRAINT manifest_entries_key DO NOTHING
    RETURNING m.version, m.path, m.rows, m.bytes, m.sha256, m.created_at
    INTO o_version, o_path, o_rows, o_bytes, o_sha256, o_created_at;
    o_inserted := FOUND;
    IF NOT o_inserted THEN
        SELECT m.version, m.path, m.rows, m.bytes, m.sha256, m.created_at
        INTO o_version, o_path, o_rows, o_bytes, o_sha256, o_created_at
        FROM manifest_entries m
        WHERE m.symbol = p_symbol AND m.feature = p_feature AND m.params_digest = p_params_digest;
    END IF;
    RETURN NEXT;
END
$fn$
"""

COLUMNS = "symbol, feature, params_digest, version, path, rows, bytes, sha256, created_at"
KEY = "symbol = %s AND feature = %s AND params_digest = %s"

INSERT = f"SELECT * FROM {INSERT_FUNCTION}(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
GET = f"SELECT {COLUMNS} FROM manifest_entries WHERE {KEY}"
DELETE = f"DELETE FROM manifest_entries WHERE {KEY}"
ENTRIES = f"SELECT {COLUMNS} FROM manifest_entries ORDER BY symbol, version"
ENTRIES_OF_SYMBOL = f"SELECT {COLUMNS} FROM manifest_entries WHERE symbol = %s ORDER BY version"
DUPLICATES = (
    "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM manifest_entries "
    "GROUP BY symbol, feature, params_digest HAVING count(*) > 1) d"
)
ADVISORY_LOCKS = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)

# Behind a transaction pooler: the timeouts of this transaction only (is_local = true), never of the server session.
LOCAL_TIMEOUTS = "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)"

# A lease is free when nobody holds it or its holder stopped renewing it (crashed): claim it in one statement.
CLAIM_LEASE = """
INSERT INTO compute_leases AS l (symbol, feature, params_digest, owner, expires_at)
VALUES (%s, %s, %s, %s, clock_timestamp() + make_interval(secs => %s))
ON CONFLICT ON CONSTRAINT compute_leases_key DO UPDATE
SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE l.expires_at < clock_timestamp() OR l.owner = excluded.owner
RETURNING l.owner
"""
RENEW_LEASES = "UPDATE compute_leases SET expires_at = clock_timestamp() + make_interval(secs => %s) WHERE owner = %s"
RELEASE_LEASE = f"DELETE FROM compute_leases WHERE {KEY} AND owner = %s"


def ensure_schema(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Create the tables and the insert function unless present; True when this call created them.

    Safe when 64 processes start at once: the DDL runs in one transaction behind an advisory lock, so concurrent
    `CREATE OR REPLACE FUNCTION` never meets "tuple concurrently updated".
    """
    if _present(conn):
        return False
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK_KEY])
        if _present(conn):
            return False
        conn.execute(_TABLES)
        conn.execute(INSERT_FUNCTION_SQL)
    return True


def _present(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    # Read pg_catalog with the statement's snapshot: to_regclass()/to_regprocedure() go through the backend's
    # catalog cache, which inside a transaction can miss what another session committed during our lock wait.
    row = conn.execute(
        "SELECT (SELECT count(*) FROM pg_proc WHERE proname = %s AND pronamespace = s.oid) "
        "     + (SELECT count(*) FROM pg_class WHERE relname IN ('manifest_entries', 'compute_leases') "
        "        AND relnamespace = s.oid) = 3 "
        "FROM pg_namespace s WHERE s.nspname = current_schema()",
        [INSERT_FUNCTION],
    ).fetchone()
    return bool(row and row[0])
