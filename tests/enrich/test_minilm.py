"""The optional MiniLM embedder on its real int8 ONNX file (when `make minilm` fetched it): unit vectors
of 384 dimensions, a paraphrase nearer than an unrelated line, the same vectors from many threads at once;
and a hub configured for it without the files keeps running with the search off, saying why."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from hub.enrich.logs.config import SemanticConfig
from hub.enrich.logs.semantic import SemanticSearch
from hub.enrich.logs.store import LogStore
from shared.clock import SystemClock
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration

MODEL_DIR = Path(
    os.environ.get("OUTPOST_MINILM_DIR", Path(__file__).resolve().parents[2] / ".outpost" / "minilm")
)
needs_model = pytest.mark.skipif(
    not (MODEL_DIR / "model.onnx").is_file(), reason="no MiniLM files (make minilm)"
)
TEXTS = [
    "disk full",
    "write failed: No space left on device",
    "Failed password for invalid user admin from 10.0.0.1 port 22 ssh2",
    "Interface GigabitEthernet0/1 changed state to down",
]


@needs_model
def test_vectors_are_unit_384_and_a_paraphrase_is_nearer_than_an_unrelated_line() -> None:
    from hub.enrich.logs.minilm import MiniLmEmbedder

    v = np.array(MiniLmEmbedder(MODEL_DIR).embed(TEXTS))
    assert v.shape == (4, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sim = v @ v.T
    assert sim[0, 1] > 0.5 > sim[0, 2] and sim[0, 1] > sim[0, 3]


@needs_model
def test_many_threads_at_once_get_the_vectors_one_thread_gets() -> None:
    from hub.enrich.logs.minilm import MiniLmEmbedder

    embedder = MiniLmEmbedder(MODEL_DIR)
    alone = embedder.embed(TEXTS)
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda _: embedder.embed(TEXTS), range(16)))
    for got in together:
        assert np.allclose(got, alone, atol=1e-6)


async def test_a_hub_set_to_minilm_without_its_files_runs_with_search_off_saying_why(tmp_path: Path) -> None:
    engine = migrated_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    config = SemanticConfig(embedder="minilm", model_dir=tmp_path / "nothing-here")
    search = SemanticSearch(
        config, tmp_path, LogStore(engine), engine, None, CollectorRegistry(), SystemClock()
    )
    await search.start()
    try:
        assert search.index is None
        assert search.unavailable is not None and "lacks model.onnx, tokenizer.json" in search.unavailable
    finally:
        await search.aclose()
        engine.dispose()
