"""The whole hub schema: importing this module puts every package's tables on `METADATA`.

What the migrations must produce (the drift test compares the two) and what `alembic revision
--autogenerate` would diff against; the hub itself never creates tables from it.
"""

from __future__ import annotations

import hub.alerts.command_models
import hub.alerts.models
import hub.auth.models
import hub.enrich.llm.models
import hub.enrich.logs.models
import hub.fleet.models
import hub.identity.models
import hub.ingest.sources.models
import hub.notify.models
import hub.store.models
from hub.db.metadata import METADATA

MODELS = (
    hub.alerts.command_models,
    hub.alerts.models,
    hub.auth.models,
    hub.enrich.llm.models,
    hub.enrich.logs.models,
    hub.fleet.models,
    hub.identity.models,
    hub.ingest.sources.models,
    hub.notify.models,
    hub.store.models,
)

# What the migrations create that no Table models (full-text search indexes): comparisons skip it.
UNMODELLED = hub.enrich.logs.models.SEARCH_OBJECTS


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's `include_name` hook for comparing a database with METADATA: leaves out `UNMODELLED`."""
    return name not in UNMODELLED


__all__ = ["METADATA", "MODELS", "UNMODELLED", "include_name"]
