"""Semantic search on a real ChromaDB under a tmp dir with the offline hashing embedder."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest

pytest.importorskip("chromadb", reason="the `semantic` extra is not installed")

from hub.enrich.logs.embed import HashingEmbedder
from hub.enrich.logs.search import MAX_QUERY_LEN, SemanticIndex, client_settings

LOGHUB = Path(__file__).resolve().parents[3] / "shared" / "data" / "loghub"

TEMPLATES = {
    "e1": "No space left on device while writing block <*>",
    "e2": "Failed password for invalid user <*> from <*> port <*> ssh2",
    "e3": "Connection closed by <*> [preauth]",
    "e4": "Kernel panic - not syncing: Fatal exception",
    "e5": "Out of memory: Kill process <*> (<*>) score <*>",
    "e6": "CPU temperature above threshold, cpu clock throttled",
}


@pytest.fixture
async def index(tmp_path: Path):
    idx = SemanticIndex(tmp_path / "chroma")
    await idx.start()
    await idx.index_templates(TEMPLATES, source="test")
    yield idx
    await idx.aclose()
    await idx.aclose()  # safe twice


def test_telemetry_is_off() -> None:
    assert client_settings().anonymized_telemetry is False


def test_embedder_is_deterministic_and_normalized() -> None:
    a, b = HashingEmbedder().embed(["disk full", "disk full"]), HashingEmbedder().embed(["disk full"])
    assert a[0] == b[0]
    assert sum(v * v for v in a[0]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("disk full", "e1"),
        ("ssh login failed for user", "e2"),
        ("out of memory killed", "e5"),
        ("overheating cpu", "e6"),
    ],
)
async def test_search_returns_expected_template(index: SemanticIndex, query: str, expected: str) -> None:
    hits = await index.search_templates(query, k=3)
    assert hits[0].id == expected
    assert hits[0].meta == {"source": "test"}
    assert 0.0 < hits[0].score <= 1.0


async def test_overlong_query_is_bounded(index: SemanticIndex) -> None:
    hits = await index.search_templates("disk full " * (MAX_QUERY_LEN // 2), k=2)
    assert hits[0].id == "e1"


async def test_persists_across_restart(tmp_path: Path, index: SemanticIndex) -> None:
    await index.aclose()
    again = SemanticIndex(tmp_path / "chroma")
    await again.start()
    assert (await again.search_templates("kernel panic", k=1))[0].id == "e4"


async def test_similar_incidents_excludes_itself(index: SemanticIndex) -> None:
    labels = {"device": "sw1", "metric": "disk_used"}
    await index.index_incident("a1", "disk full on /var", labels, status="open")
    await index.index_incident("a2", "disk usage high on /var", {"device": "sw2", "metric": "disk_used"})
    await index.index_incident("a3", "BGP peer down", {"device": "rt1", "metric": "bgp_state"})
    hits = await index.similar_incidents("a1", k=2)
    assert [h.id for h in hits][0] == "a2"
    assert "a1" not in [h.id for h in hits]
    assert await index.similar_incidents("nope") == []


async def test_many_searches_at_once(index: SemanticIndex) -> None:
    queries = ["disk full", "ssh login failed for user", "kernel panic", "out of memory killed"] * 10
    writes = [index.index_incident(f"i{n}", f"incident {n} disk full", {"n": str(n)}) for n in range(10)]
    results = await asyncio.gather(*(index.search_templates(q, k=1) for q in queries), *writes)
    assert [r[0].id for r in results[: len(queries)]] == ["e1", "e2", "e4", "e5"] * 10


@pytest.mark.skipif(not (LOGHUB / "OpenSSH").is_dir(), reason="Loghub data not in ../shared")
async def test_loghub_templates_are_searchable(tmp_path: Path) -> None:
    with open(LOGHUB / "OpenSSH" / "OpenSSH_2k.log_templates.csv", newline="") as f:
        rows = {r["EventId"]: r["EventTemplate"] for r in csv.DictReader(f)}
    idx = SemanticIndex(tmp_path / "c")
    await idx.start()
    await idx.index_templates(rows)
    hits = await idx.search_templates("failed password for root", k=5)
    assert any("Failed password" in h.text for h in hits)
