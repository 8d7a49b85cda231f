"""The baseline's constraints get the names of METADATA's naming convention (`pk_<table>`,
`uq_<table>_<columns>`), so later revisions can alter or drop them by one name on every database.

PostgreSQL named them itself (`agents_pkey`, `api_tokens_token_hash_key`): renamed in place. SQLite has
no RENAME CONSTRAINT: `api_tokens` is rebuilt with its unique constraint named (its primary keys stay
unnamed there; SQLite never addresses them by name and batch mode rebuilds the table anyway).

Revision ID: 0003_constraint_names
Revises: 0002_alerts_notify
"""

from __future__ import annotations

from alembic import op

revision = "0003_constraint_names"
down_revision = "0002_alerts_notify"
branch_labels = None
depends_on = None

_TABLES = (
    "agents",
    "agent_epochs",
    "seen_batches",
    "api_tokens",
    "enroll_tokens",
    "enroll_audit",
    "agent_certificates",
    "revoked_agents",
)
# A frozen copy of hub/db/metadata.py's convention: a revision must not change when that file does.
_CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_N_name)s", "pk": "pk_%(table_name)s"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _TABLES:
            op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {table}_pkey TO pk_{table}")
        op.execute(
            "ALTER TABLE api_tokens RENAME CONSTRAINT api_tokens_token_hash_key TO uq_api_tokens_token_hash"
        )
        return
    with op.batch_alter_table("api_tokens", recreate="always", naming_convention=_CONVENTION):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE api_tokens RENAME CONSTRAINT uq_api_tokens_token_hash TO api_tokens_token_hash_key"
        )
        for table in _TABLES:
            op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT pk_{table} TO {table}_pkey")
