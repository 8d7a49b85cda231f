"""The hub's log store (`logs:` in hub.yaml).

logs:
  retention_days: 7        # lines older than this are pruned
  max_rows: 5000000        # and beyond this many the oldest go first
  prune_interval_s: 300    # how often the prune pass runs (once across hub processes)
  max_template_series: 10000  # distinct log_template_count series written at most
  pollers: []              # Datadog Logs and Splunk sources pulled into the store (pollers/config.py)
  semantic:                # semantic search of templates and incidents (semantic.py)
    enabled: true          # on by default; without chromadb installed the search answers 503
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.enrich.logs.pollers.config import PollerConfig


class SemanticConfig(BaseModel):
    """Semantic search of log templates and incidents (`logs.semantic`).

    On by default: it needs no model and no network (the hashing embedder), only the `semantic` extra
    (chromadb). A hub without chromadb still starts, logs once that the search is off, and answers its
    two endpoints with a counted 503; `enabled: false` does the same without trying.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    # The chromadb directory; relative paths are under data_dir (default: data_dir/semantic).
    path: Path = Path("semantic")
    # hashing: no files needed; minilm: all-MiniLM-L6-v2 int8 ONNX from `model_dir` (`make minilm`).
    embedder: Literal["hashing", "minilm"] = "hashing"
    # model.onnx and tokenizer.json of the minilm embedder; relative paths are under data_dir.
    model_dir: Path = Path("minilm")
    # Templates and incidents waiting to be indexed; beyond this they are dropped (counted) and picked
    # up by the next resync from the log store and the incidents table.
    queue: int = Field(default=10_000, ge=1, le=1_000_000)
    # How often the index is compared with the log store and the newest incidents (and filled where it
    # lacks them): at start, then at this interval. The only source of updates in an `api` process.
    resync_interval_s: float = Field(default=300.0, gt=0, le=86_400)
    # Newest incidents compared at each resync.
    resync_incidents: int = Field(default=1000, ge=0, le=100_000)


class LogsConfig(BaseModel):
    """Retention, bounds of one line, and the template-count series written into the series store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    retention_days: float = Field(default=7.0, gt=0, le=3650)
    max_rows: int = Field(default=5_000_000, ge=1, le=2_000_000_000)
    prune_interval_s: float = Field(default=300.0, gt=0, le=86_400)
    # Rows deleted per transaction while pruning, so ingest never waits long on the state database.
    prune_chunk: int = Field(default=5_000, ge=1, le=1_000_000)
    # A longer message is cut to this many characters (counted as truncated, still stored); bounded so
    # PostgreSQL's tsvector of one line stays far below its 1 MB limit.
    max_message_chars: int = Field(default=8192, ge=64, le=100_000)
    # Distinct (agent, device, template) count series; a new one past the cap is not written (counted).
    max_template_series: int = Field(default=10_000, ge=1, le=1_000_000)
    # How often the minutes that received lines are counted again and written as series points.
    counts_interval_s: float = Field(default=10.0, gt=0, le=3600)
    # How often the template miner's state is saved under data_dir (also at a clean stop).
    snapshot_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    # Remote log platforms polled into the store (run in one hub process: the log-pollers lock).
    pollers: tuple[PollerConfig, ...] = Field(default=(), max_length=64)
    semantic: SemanticConfig = SemanticConfig()

    @field_validator("pollers")
    @classmethod
    def _unique_names(cls, pollers: tuple[PollerConfig, ...]) -> tuple[PollerConfig, ...]:
        names = [p.name for p in pollers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"poller names must be unique (each names its cursor file): {twice}")
        return pollers
