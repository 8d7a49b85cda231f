"""Builds the configured store backend; beside the stores so their config never imports them."""

from __future__ import annotations

from pathlib import Path

from hub.store.base import Store
from hub.store.config import EmbeddedStoreConfig, StoreConfig
from hub.store.embedded.store import EmbeddedStore
from hub.store.influx.store import InfluxStore
from shared.clock import Clock, SystemClock


def build_store(config: StoreConfig, data_dir: Path, clock: Clock | None = None) -> Store:
    """Builds the configured backend (not yet opened); relative paths resolve against `data_dir`."""
    clock = clock or SystemClock()
    if isinstance(config, EmbeddedStoreConfig):
        return EmbeddedStore(data_dir / config.path, config, clock)
    return InfluxStore(config, data_dir / config.ledger_path, clock)
