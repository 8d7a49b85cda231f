"""The semantic search component in this process on a real SQLite state database and a real ChromaDB:
the start-up resync indexes the store's templates the index lacks, the intake's offers queue only new or
changed texts (bounded, drops counted), and a hub without chromadb importable keeps running without it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from hub.enrich.logs.config import SemanticConfig
from hub.enrich.logs.semantic import NO_CHROMADB, SemanticSearch
from hub.enrich.logs.store import LogStore, MinedRecord
from shared.clock import SystemClock
from shared.model import LogRecord
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration

T0 = 1_789_999_200_000
STORED = {
    "t-disk": "No space left on device",
    "t-ssh": "Failed password for invalid user <*> from <*> port <*> ssh2",
    "t-oom": "Out of memory: Kill process <*> (<*>) score <*>",
}


def _search(tmp_path: Path, registry: CollectorRegistry, **cfg: int) -> tuple[SemanticSearch, LogStore]:
    engine = migrated_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    logs = LogStore(engine)
    lines = [
        MinedRecord(LogRecord(T0 + i, T0 + i, text), tid, text)
        for i, (tid, text) in enumerate(STORED.items())
    ]
    assert logs.write("s/edge", 1, 1, lines, T0)
    search = SemanticSearch(SemanticConfig(**cfg), tmp_path, logs, engine, None, registry, SystemClock())
    return search, logs


async def _until(probe: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Polls `probe` on the event loop (the indexer runs on it) until it holds, or fails with `what`."""
    async with asyncio.timeout(timeout):
        while not probe():
            await asyncio.sleep(0.05)


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[SemanticSearch, CollectorRegistry]]:
    pytest.importorskip("chromadb", reason="the `semantic` extra is not installed")
    registry = CollectorRegistry()
    search, _ = _search(tmp_path, registry, queue=2)
    await search.start()
    try:
        yield search, registry
    finally:
        await search.aclose()
        await search.aclose()  # safe twice


async def test_start_indexes_the_templates_the_store_has_and_the_index_lacks(
    running: tuple[SemanticSearch, CollectorRegistry],
) -> None:
    search, registry = running
    await _until(
        lambda: _value(registry, "outpost_hub_semantic_indexed_total", kind="templates") == 3, "resync"
    )
    [hit] = search.search("disk is full", 1)
    assert (hit.template_id, hit.count, hit.last_seen_ms) == ("t-disk", 1, T0)
    assert search.search("ssh login failed", 1)[0].template_id == "t-ssh"


async def test_offers_queue_only_new_or_changed_templates_and_a_full_queue_drops_counted(
    running: tuple[SemanticSearch, CollectorRegistry],
) -> None:
    search, registry = running
    indexed = "outpost_hub_semantic_indexed_total"
    await _until(lambda: _value(registry, indexed, kind="templates") == 3, "resync")
    search.offer_templates(dict(STORED), "s/edge")  # known texts: nothing queued
    assert _value(registry, "outpost_hub_semantic_pending") == 0
    search.offer_templates(
        {"t-disk": "No space left on device <*>", "t-new": "kernel panic", "t-3": "x"}, "s/b"
    )
    assert _value(registry, "outpost_hub_semantic_dropped_total", kind="templates") == 1  # queue: 2
    await _until(lambda: _value(registry, indexed, kind="templates") == 5, "the two queued indexed")
    assert search.search("kernel crash", 1)[0].template_id == "t-new"
    assert search.search("disk full", 1)[0].template == "No space left on device <*>"


async def test_without_chromadb_importable_the_component_starts_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "chromadb", None)  # `import chromadb` raises ImportError
    monkeypatch.delitem(sys.modules, "hub.enrich.logs.search", raising=False)
    search, _ = _search(tmp_path, CollectorRegistry())
    await search.start()
    assert search.index is None and search.unavailable == NO_CHROMADB
    search.offer_templates({"t": "anything"}, "s/edge")  # ingest keeps going: nothing queued
    assert search.similar_lines("abc") == []
    with pytest.raises(RuntimeError, match="chromadb"):
        search.search("disk full", 5)
    await search.aclose()
