"""The outcome of operator commands an `api` process handed to the alert engine over the bus.

The engine (in whichever worker holds the alerts lock) writes one row per command it executed; the api
process that published the command waits for that row, so it can answer with the result (or 404) and
a redelivered command is executed once.
"""

from __future__ import annotations

import sqlalchemy as sa

from hub.db.metadata import METADATA

alert_commands = sa.Table(
    "alert_commands",
    METADATA,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("target", sa.String(64), nullable=False),
    # ok, not_found or error; detail says why for the last two.
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("done_ms", sa.BigInteger, nullable=False, index=True),
)
