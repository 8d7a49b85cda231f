"""SIGKILL during ingest: every acknowledged batch survives and the store opens cleanly."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from hub.store.base import RangeQuery
from hub.store.config import EmbeddedStoreConfig
from hub.store.embedded.store import EmbeddedStore
from hub.store.factory import build_store
from tests.store import crash_writer
from tests.support.procs import start_service

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("acks_before_kill", [3, 150, 400])
def test_sigkill_mid_ingest_loses_no_acknowledged_batch(tmp_path: Path, acks_before_kill: int) -> None:
    writer = start_service(
        "crash-writer",
        [sys.executable, "-m", "tests.store.crash_writer", str(tmp_path)],
        tmp_path,
        ready_log=rf"acked {acks_before_kill}\n",
        cwd=ROOT,
    )
    writer.kill()  # SIGKILL, mid-ingest: the writer never stops on its own
    acked = [int(s) for s in re.findall(r"acked (\d+)\n", writer.log())]
    assert acked == list(range(len(acked))) and len(acked) > acks_before_kill

    store = build_store(EmbeddedStoreConfig(), tmp_path)
    assert isinstance(store, EmbeddedStore)
    store.open()
    try:
        results = store.query(RangeQuery("load", crash_writer.T0, crash_writer.T0 + 10**10))
        assert len(results) == crash_writer.SERIES
        for core, result in enumerate(results):
            # The batch in flight at the kill may or may not be there; every acknowledged one must be.
            idx = result.timestamps_ms[: len(acked) * crash_writer.POINTS] - crash_writer.T0
            expected = np.arange(len(acked) * crash_writer.POINTS) * 10_000
            assert idx.tolist() == expected.tolist()
            assert result.values[: len(expected)].tolist() == (expected / 10_000 + core).tolist()
        for seq in acked:
            assert store.write("edge-crash", crash_writer.batch(seq)).duplicate is True
        assert store.stats.journal_records_skipped == 0
    finally:
        store.close()
