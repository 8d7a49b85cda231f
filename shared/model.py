"""Value types that flow from collectors through batches to the hub's store.

A series is identified by its metric name plus labels. Points travel column-wise (numpy arrays) so that
no per-point Python object exists between the batcher and the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import numpy.typing as npt

I64Array = npt.NDArray[np.int64]
F64Array = npt.NDArray[np.float64]
F32Array = npt.NDArray[np.float32]


class MetricKind(Enum):
    """How a series' values are to be read (mirrors outpost.v1.MetricKind)."""

    GAUGE = 1
    RATE = 2
    COUNTER = 3


class Severity(Enum):
    """Severity of an event (mirrors outpost.v1.Severity)."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3


class BatchClass(Enum):
    """What a batch carries; under pressure the spool sheds LOGS first, then METRICS (rolled up before
    they are dropped), then the rest."""

    METRICS = 1
    EVENTS = 2
    ANOMALY = 3
    HEARTBEAT = 4
    ROLLUP = 5
    LOGS = 6


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """Metric name plus sorted labels; hashable so it can index detector and store state."""

    metric: str
    labels: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, metric: str, labels: Mapping[str, str] | None = None) -> SeriesKey:
        """Builds a key with labels sorted by name, the canonical order everywhere."""
        return cls(metric, tuple(sorted((labels or {}).items())))

    def label(self, name: str, default: str = "") -> str:
        """Returns one label's value."""
        for k, v in self.labels:
            if k == name:
                return v
        return default

    def __str__(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.metric}{{{inner}}}"


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading from a collector. Collectors emit these; the batcher turns them into columns."""

    key: SeriesKey
    ts_ms: int
    value: float
    kind: MetricKind = MetricKind.GAUGE
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Limits:
    """Device-reported thresholds for a series (SNMP sensor limits, Redfish UpperThresholdCritical...).

    The edge detectors use them as guardrails that fire even while a baseline is still learning, and
    they travel with the series' points so the hub's limit rules see what the device said.
    """

    warn_high: float | None = None
    crit_high: float | None = None
    warn_low: float | None = None
    crit_low: float | None = None


@dataclass(frozen=True, slots=True, eq=False)
class SeriesPoints:
    """All points of one series in a batch, column-wise; timestamps strictly increasing (ms)."""

    key: SeriesKey
    timestamps_ms: I64Array
    values: F64Array
    kind: MetricKind = MetricKind.GAUGE
    unit: str = ""
    scores: F32Array | None = None
    # The device's limits for this series when it reported any (None: no limits, or not known here).
    limits: Limits | None = None

    def __len__(self) -> int:
        return int(self.timestamps_ms.shape[0])


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened (trap, SEL entry, anomaly onset or end) rather than a sample."""

    ts_ms: int
    kind: str
    severity: Severity
    source: str
    message: str = ""
    attributes: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls,
        ts_ms: int,
        kind: str,
        severity: Severity,
        source: str,
        message: str = "",
        attributes: Mapping[str, str] | None = None,
    ) -> Event:
        """Builds an event with attributes sorted by name."""
        return cls(ts_ms, kind, severity, source, message, tuple(sorted((attributes or {}).items())))


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log line as received at the edge (a syslog message today), kept raw for search and mining.

    Fields are plain syslog ones so any source maps onto them; `device` names the sender as the agent
    knows it (the configured device for its address, else the sending host), so log lines and metric
    series of one device share a label value.
    """

    ts_ms: int  # when the sender says it happened (received time when it did not say)
    received_ms: int
    message: str
    facility: int = 1  # syslog numbers; 1 = user
    severity: int = 5  # 0 emergency .. 7 debug; 5 = notice
    host: str = ""
    app: str = ""
    procid: str = ""
    msgid: str = ""
    device: str = ""
    structured_data: str = ""


@dataclass(frozen=True, slots=True)
class TargetState:
    """One polled target in a heartbeat: is it up, and how long its last poll took."""

    name: str
    up: bool
    last_poll_ms: int = 0


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The agent saying it is alive, and how it is doing right now (mirrors outpost.v1.Heartbeat).

    It travels alone in a HEARTBEAT batch; the hub tracks agents offline from these, so only the newest
    one matters and the agent's spool never queues more than one.
    """

    ts_ms: int
    agent_version: str
    interval_ms: int
    spool_records: int = 0
    spool_bytes: int = 0
    cert_not_after_ms: int = 0  # 0 = unknown
    targets: tuple[TargetState, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Batch:
    """The unit of delivery; (agent identity, boot_epoch, seq) identifies it for deduplication."""

    boot_epoch: int
    seq: int
    series: tuple[SeriesPoints, ...] = ()
    events: tuple[Event, ...] = ()
    batch_class: BatchClass = BatchClass.METRICS
    heartbeat: Heartbeat | None = None
    logs: tuple[LogRecord, ...] = ()

    @property
    def batch_id(self) -> str:
        """Stable id used for NATS Nats-Msg-Id and log lines."""
        return f"{self.boot_epoch}-{self.seq}"

    @property
    def point_count(self) -> int:
        return sum(len(s) for s in self.series)


@dataclass(frozen=True, slots=True)
class CollectResult:
    """A poll's outcome: a partial poll is a value (samples plus the errors met), not an exception."""

    target: str
    samples: list[Sample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    limits: dict[SeriesKey, Limits] = field(default_factory=dict)
