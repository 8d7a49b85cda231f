"""A hub database as the hub made it before Alembic (`create_all` in hub/state.py and hub/identity/db.py).

The DDL is what `sqlalchemy.schema.CreateTable` printed for those tables at the last commit before
Alembic (7256a66), on SQLite and PostgreSQL; they differ only in the audit log's auto-increment key.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

_DDL = (
    "CREATE TABLE agent_epochs ( agent VARCHAR(255) NOT NULL, boot_epoch BIGINT NOT NULL,"
    " max_seq BIGINT NOT NULL, received BIGINT NOT NULL, PRIMARY KEY (agent, boot_epoch) )",
    "CREATE TABLE agents ( id VARCHAR(255) NOT NULL, first_seen_ms BIGINT NOT NULL,"
    " last_seen_ms BIGINT NOT NULL, points_received BIGINT NOT NULL, batches_received BIGINT NOT NULL,"
    " duplicates BIGINT NOT NULL, PRIMARY KEY (id) )",
    "CREATE TABLE api_tokens ( name VARCHAR(255) NOT NULL, token_hash VARCHAR(64) NOT NULL,"
    " role VARCHAR(32) NOT NULL, created_ms BIGINT NOT NULL, PRIMARY KEY (name), UNIQUE (token_hash) )",
    "CREATE TABLE seen_batches ( agent VARCHAR(255) NOT NULL, boot_epoch BIGINT NOT NULL,"
    " seq BIGINT NOT NULL, seen_ms BIGINT NOT NULL, PRIMARY KEY (agent, boot_epoch, seq) )",
    "CREATE INDEX ix_seen_batches_seen_ms ON seen_batches (seen_ms)",
    "CREATE TABLE agent_certificates ( serial VARCHAR(48) NOT NULL, agent VARCHAR(160) NOT NULL,"
    " issued_ms BIGINT NOT NULL, not_after_ms BIGINT NOT NULL, PRIMARY KEY (serial) )",
    "CREATE INDEX ix_agent_certificates_agent ON agent_certificates (agent)",
    "CREATE TABLE enroll_audit ( id {serial} NOT NULL, at_ms BIGINT NOT NULL, action VARCHAR(16) NOT NULL,"
    " token_id VARCHAR(32) NOT NULL, agent VARCHAR(160) NOT NULL, peer VARCHAR(80) NOT NULL,"
    " outcome VARCHAR(24) NOT NULL, PRIMARY KEY (id) )",
    "CREATE TABLE enroll_tokens ( id VARCHAR(32) NOT NULL, secret_hash VARCHAR(64) NOT NULL,"
    " site VARCHAR(64) NOT NULL, created_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL,"
    " max_uses INTEGER NOT NULL, uses INTEGER NOT NULL, revoked_ms BIGINT, PRIMARY KEY (id) )",
    "CREATE TABLE revoked_agents ( agent VARCHAR(160) NOT NULL, revoked_ms BIGINT NOT NULL,"
    " PRIMARY KEY (agent) )",
)

ADMIN_TOKEN = "opt_legacy-admin-token-made-before-alembic"
T0 = 1_800_000_000_000

_ROWS = (
    "INSERT INTO agents VALUES ('dc1/edge1', 1800000000000, 1800000060000, 400, 10, 2)",
    "INSERT INTO agents VALUES ('dc2/edge7', 1800000000000, 1800000030000, 40, 1, 0)",
    "INSERT INTO agent_epochs VALUES ('dc1/edge1', 5, 12, 10)",
    "INSERT INTO agent_epochs VALUES ('dc2/edge7', 1, 1, 1)",
    "INSERT INTO seen_batches VALUES ('dc2/edge7', 1, 1, 1800000030000)",
    "INSERT INTO api_tokens VALUES ('admin', '{hash}', 'admin', 1800000000000)",
    "INSERT INTO enroll_tokens VALUES ('tok1', 'x', 'dc1', 1800000000000, 1800003600000, 3, 1, NULL)",
    "INSERT INTO enroll_audit (at_ms, action, token_id, agent, peer, outcome)"
    " VALUES (1800000000001, 'enroll', 'tok1', 'dc1/edge1', '10.0.0.5', 'ok')",
    "INSERT INTO agent_certificates VALUES ('0a1b', 'dc1/edge1', 1800000000001, 1807776000001)",
    "INSERT INTO revoked_agents VALUES ('dc1/old', 1800000000002)",
)


def create_legacy_database(engine: sa.Engine, rows: bool = True) -> None:
    """The eight pre-Alembic tables (no `alembic_version`), with two agents, the admin token and one of
    each enrollment record when `rows`."""
    serial = "SERIAL" if engine.dialect.name == "postgresql" else "INTEGER"
    token_hash = hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()
    with engine.begin() as db:
        for ddl in _DDL:
            db.exec_driver_sql(ddl.replace("{serial}", serial))
        for row in _ROWS if rows else ():
            db.exec_driver_sql(row.replace("{hash}", token_hash))
