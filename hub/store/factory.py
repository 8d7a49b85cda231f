"""Builds the configured store backend; beside the stores so their config never imports them."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from hub.store.base import Store
from hub.store.config import EmbeddedStoreConfig, StoreConfig
from hub.store.embedded.store import EmbeddedStore
from hub.store.influx.store import InfluxStore
from hub.store.ledger import SharedLedger
from shared.clock import Clock, SystemClock


def build_store(
    config: StoreConfig, data_dir: Path, clock: Clock | None = None, shared_state: sa.Engine | None = None
) -> Store:
    """Builds the configured backend (not yet opened); relative paths resolve against `data_dir`.

    Args:
        shared_state: the state database several hub processes share; given, the InfluxDB store keeps
            its batch ids and events there instead of in its local SQLite ledger. (The embedded store is
            one process's own files: it has nothing to share.)
    """
    clock = clock or SystemClock()
    if isinstance(config, EmbeddedStoreConfig):
        return EmbeddedStore(data_dir / config.path, config, clock)
    shared = SharedLedger(shared_state) if shared_state is not None else None
    return InfluxStore(config, data_dir / config.ledger_path, clock, shared=shared)
