"""Alerts (alerts, silences and maintenance windows, incidents and their timeline, the notification log)
and the notification outbox, as `hub/alerts/models.py` and `hub/notify/models.py` define them.

Constraint and index names are spelled out as METADATA's naming convention makes them.

Revision ID: 0002_alerts_notify
Revises: 0001_baseline
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_alerts_notify"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def _seq() -> sa.types.TypeEngine[int]:
    """BIGINT on PostgreSQL; INTEGER on SQLite, where only that is an auto-incrementing rowid."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("annotations", sa.JSON, nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("links", sa.JSON, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("first_seen_ms", sa.BigInteger, nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
        sa.Column("starts_ms", sa.BigInteger, nullable=False),
        sa.Column("ends_ms", sa.BigInteger, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("flapping", sa.Boolean, nullable=False),
        sa.Column("transitions", sa.JSON, nullable=False),
        sa.Column("resolve_after_ms", sa.BigInteger, nullable=True),
        sa.Column("eligible_ms", sa.BigInteger, nullable=False),
        sa.Column("notified", sa.JSON, nullable=False),
        sa.Column("resolved_notified", sa.JSON, nullable=False),
        sa.Column("resolve_owed", sa.Boolean, nullable=False),
        sa.Column("silenced_by", sa.String(24), nullable=True),
        sa.Column("ack_by", sa.String(255), nullable=True),
        sa.Column("ack_ms", sa.BigInteger, nullable=True),
        sa.Column("resolved_by", sa.String(255), nullable=True),
        sa.Column("incident_id", sa.String(24), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    for column in ("fingerprint", "status", "resolve_owed", "incident_id"):
        op.create_index(f"ix_alerts_{column}", "alerts", [column])
    op.create_table(
        "alert_windows",
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("matchers", sa.JSON, nullable=False),
        sa.Column("starts_ms", sa.BigInteger, nullable=False),
        sa.Column("ends_ms", sa.BigInteger, nullable=True),
        sa.Column("rrule", sa.String(256), nullable=True),
        sa.Column("duration_ms", sa.BigInteger, nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("deleted_ms", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_windows"),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("group_key", sa.String(512), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("resolved_ms", sa.BigInteger, nullable=True),
        sa.Column("assignee", sa.String(255), nullable=True),
        sa.Column("ack_by", sa.String(255), nullable=True),
        sa.Column("ack_ms", sa.BigInteger, nullable=True),
        sa.Column("alert_ids", sa.JSON, nullable=False),
        sa.Column("open_alerts", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_group_key", "incidents", ["group_key"])
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_table(
        "incident_timeline",
        sa.Column("seq", _seq(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(24), nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("alert_id", sa.String(24), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_incident_timeline"),
    )
    op.create_index("ix_incident_timeline_incident_id", "incident_timeline", ["incident_id"])
    op.create_table(
        "alert_notify_log",
        sa.Column("group_key", sa.String(512), nullable=False),
        sa.Column("receiver", sa.String(128), nullable=False),
        sa.Column("firing", sa.JSON, nullable=False),
        sa.Column("last_notify_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("group_key", name="pk_alert_notify_log"),
    )
    op.create_table(
        "notify_outbox",
        sa.Column("seq", _seq(), autoincrement=True, nullable=False),
        sa.Column("receiver", sa.String(200), nullable=False),
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("group_hash", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger, nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_token", sa.String(32), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("dead_reason", sa.String(32), nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("enqueued_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("sent_ms", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_notify_outbox"),
        sa.UniqueConstraint("receiver", "id", name="uq_notify_outbox_receiver_id"),
        sa.CheckConstraint("state IN ('pending', 'sent', 'dead')", name="ck_notify_outbox_state"),
    )
    op.create_index(
        "ix_notify_outbox_receiver_state_next_attempt_ms",
        "notify_outbox",
        ["receiver", "state", "next_attempt_ms"],
    )
    op.create_index(
        "ix_notify_outbox_receiver_group_hash_state_seq",
        "notify_outbox",
        ["receiver", "group_hash", "state", "seq"],
    )
    op.create_index("ix_notify_outbox_lease_token", "notify_outbox", ["lease_token"])


def downgrade() -> None:
    for table in (
        "notify_outbox",
        "alert_notify_log",
        "incident_timeline",
        "incidents",
        "alert_windows",
        "alerts",
    ):
        op.drop_table(table)
