"""Manifest backends behind one Protocol: PostgreSQL (shared), DuckDB (embedded default and fallback), memory
(the test double)."""
