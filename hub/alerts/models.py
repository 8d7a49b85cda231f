"""The alerts package's tables (on the hub's one MetaData); other packages reach them through service.py."""

from __future__ import annotations

import sqlalchemy as sa

from hub.db.metadata import METADATA

# Indexed only where a query filters (status for listings): the engine finds alerts by fingerprint in
# memory, and every index is a random page write per created alert (migration 0014).
alerts = sa.Table(
    "alerts",
    METADATA,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("fingerprint", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
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
    # Resolved, but a receiver told it was firing has not been told it ended: loaded again at start.
    sa.Column("resolve_owed", sa.Boolean, nullable=False),
    sa.Column("silenced_by", sa.String(24), nullable=True),
    sa.Column("ack_by", sa.String(255), nullable=True),
    sa.Column("ack_ms", sa.BigInteger, nullable=True),
    sa.Column("resolved_by", sa.String(255), nullable=True),
    sa.Column("incident_id", sa.String(24), nullable=True),
    # The hub's confirmation of an edge onset (hub.confirm) and the features that decided it.
    sa.Column("verdict", sa.String(16), nullable=True),
    sa.Column("verdict_features", sa.JSON, nullable=True),
)

# Silences and maintenance windows; deleting one expires it (kept for the audit of who silenced what).
windows = sa.Table(
    "alert_windows",
    METADATA,
    sa.Column("id", sa.String(24), primary_key=True),
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
)

incidents = sa.Table(
    "incidents",
    METADATA,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("group_key", sa.String(512), nullable=False, index=True),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("opened_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("resolved_ms", sa.BigInteger, nullable=True),
    sa.Column("assignee", sa.String(255), nullable=True),
    sa.Column("ack_by", sa.String(255), nullable=True),
    sa.Column("ack_ms", sa.BigInteger, nullable=True),
    sa.Column("alert_ids", sa.JSON, nullable=False),
    sa.Column("open_alerts", sa.JSON, nullable=False),
)

timeline = sa.Table(
    "incident_timeline",
    METADATA,
    # BIGINT on PostgreSQL; INTEGER on SQLite, where only that is an auto-incrementing rowid.
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("incident_id", sa.String(24), nullable=False, index=True),
    sa.Column("ts_ms", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("alert_id", sa.String(24), nullable=True),
)

# The notification log: per receiver and group, the firing set last sent (Alertmanager's nflog).
notify_log = sa.Table(
    "alert_notify_log",
    METADATA,
    sa.Column("group_key", sa.String(512), primary_key=True),
    sa.Column("receiver", sa.String(128), nullable=False),
    sa.Column("firing", sa.JSON, nullable=False),
    sa.Column("last_notify_ms", sa.BigInteger, nullable=False),
)
