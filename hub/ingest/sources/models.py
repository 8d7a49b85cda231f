"""The webhook sources' tables and the delivery ids signed webhooks have used (on the hub's one
MetaData); other packages reach them through `hub.ingest.sources.repository` and `.deliveries`."""

from __future__ import annotations

import sqlalchemy as sa

from hub.db.metadata import METADATA

# One row per source. `signature` and `mapping` are the validated settings as JSON (their shape is the
# REST model's, `hub.api.routes.webhook_sources`), so a new optional setting needs no migration.
webhook_sources = sa.Table(
    "webhook_sources",
    METADATA,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("preset", sa.String(32), nullable=True),
    sa.Column("signature", sa.JSON, nullable=False),
    sa.Column("mapping", sa.JSON, nullable=True),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

# A source's signing secrets. HMAC needs the secret itself, so it cannot be kept as a hash like an API
# key: it is kept here and never selected by anything the API answers with (only `hint`). At most two
# are active (`retired_ms` null) at once, so a sender can be moved to a new one without a gap; a
# retired row keeps its id, hint and times and loses the secret.
webhook_source_secrets = sa.Table(
    "webhook_source_secrets",
    METADATA,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("source_id", sa.String(64), nullable=False, index=True),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("hint", sa.String(8), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("retired_ms", sa.BigInteger, nullable=True),
)

# Delivery ids taken within their window (`hub.ingest.sources.deliveries`), as SHA-256 hex of scope and
# id; shared by every hub process on the database, so a replay is refused by any of them.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    METADATA,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("expires_ms", sa.BigInteger, nullable=False, index=True),
)
