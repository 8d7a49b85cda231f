from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MetricKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_KIND_UNSPECIFIED: _ClassVar[MetricKind]
    METRIC_KIND_GAUGE: _ClassVar[MetricKind]
    METRIC_KIND_RATE: _ClassVar[MetricKind]
    METRIC_KIND_COUNTER: _ClassVar[MetricKind]

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_INFO: _ClassVar[Severity]
    SEVERITY_WARNING: _ClassVar[Severity]
    SEVERITY_CRITICAL: _ClassVar[Severity]

class BatchClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_CLASS_UNSPECIFIED: _ClassVar[BatchClass]
    BATCH_CLASS_METRICS: _ClassVar[BatchClass]
    BATCH_CLASS_EVENTS: _ClassVar[BatchClass]
    BATCH_CLASS_ANOMALY: _ClassVar[BatchClass]
    BATCH_CLASS_HEARTBEAT: _ClassVar[BatchClass]
    BATCH_CLASS_ROLLUP: _ClassVar[BatchClass]
    BATCH_CLASS_LOGS: _ClassVar[BatchClass]

class Encoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENCODING_UNSPECIFIED: _ClassVar[Encoding]
    ENCODING_NONE: _ClassVar[Encoding]
    ENCODING_ZSTD: _ClassVar[Encoding]
METRIC_KIND_UNSPECIFIED: MetricKind
METRIC_KIND_GAUGE: MetricKind
METRIC_KIND_RATE: MetricKind
METRIC_KIND_COUNTER: MetricKind
SEVERITY_UNSPECIFIED: Severity
SEVERITY_INFO: Severity
SEVERITY_WARNING: Severity
SEVERITY_CRITICAL: Severity
BATCH_CLASS_UNSPECIFIED: BatchClass
BATCH_CLASS_METRICS: BatchClass
BATCH_CLASS_EVENTS: BatchClass
BATCH_CLASS_ANOMALY: BatchClass
BATCH_CLASS_HEARTBEAT: BatchClass
BATCH_CLASS_ROLLUP: BatchClass
BATCH_CLASS_LOGS: BatchClass
ENCODING_UNSPECIFIED: Encoding
ENCODING_NONE: Encoding
ENCODING_ZSTD: Encoding

class Label(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class SeriesColumns(_message.Message):
    __slots__ = ("metric_refs", "label_counts", "label_refs", "kinds", "unit_refs", "point_counts", "time_deltas_ms", "values", "anomaly_scores", "limit_warn_high", "limit_crit_high", "limit_warn_low", "limit_crit_low")
    METRIC_REFS_FIELD_NUMBER: _ClassVar[int]
    LABEL_COUNTS_FIELD_NUMBER: _ClassVar[int]
    LABEL_REFS_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    UNIT_REFS_FIELD_NUMBER: _ClassVar[int]
    POINT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    TIME_DELTAS_MS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_SCORES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_WARN_HIGH_FIELD_NUMBER: _ClassVar[int]
    LIMIT_CRIT_HIGH_FIELD_NUMBER: _ClassVar[int]
    LIMIT_WARN_LOW_FIELD_NUMBER: _ClassVar[int]
    LIMIT_CRIT_LOW_FIELD_NUMBER: _ClassVar[int]
    metric_refs: _containers.RepeatedScalarFieldContainer[int]
    label_counts: _containers.RepeatedScalarFieldContainer[int]
    label_refs: _containers.RepeatedScalarFieldContainer[int]
    kinds: _containers.RepeatedScalarFieldContainer[MetricKind]
    unit_refs: _containers.RepeatedScalarFieldContainer[int]
    point_counts: _containers.RepeatedScalarFieldContainer[int]
    time_deltas_ms: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    anomaly_scores: _containers.RepeatedScalarFieldContainer[float]
    limit_warn_high: _containers.RepeatedScalarFieldContainer[float]
    limit_crit_high: _containers.RepeatedScalarFieldContainer[float]
    limit_warn_low: _containers.RepeatedScalarFieldContainer[float]
    limit_crit_low: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, metric_refs: _Optional[_Iterable[int]] = ..., label_counts: _Optional[_Iterable[int]] = ..., label_refs: _Optional[_Iterable[int]] = ..., kinds: _Optional[_Iterable[_Union[MetricKind, str]]] = ..., unit_refs: _Optional[_Iterable[int]] = ..., point_counts: _Optional[_Iterable[int]] = ..., time_deltas_ms: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ..., anomaly_scores: _Optional[_Iterable[float]] = ..., limit_warn_high: _Optional[_Iterable[float]] = ..., limit_crit_high: _Optional[_Iterable[float]] = ..., limit_warn_low: _Optional[_Iterable[float]] = ..., limit_crit_low: _Optional[_Iterable[float]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("time_unix_ms", "kind", "severity", "source", "message", "attributes")
    TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    time_unix_ms: int
    kind: str
    severity: Severity
    source: str
    message: str
    attributes: _containers.RepeatedCompositeFieldContainer[Label]
    def __init__(self, time_unix_ms: _Optional[int] = ..., kind: _Optional[str] = ..., severity: _Optional[_Union[Severity, str]] = ..., source: _Optional[str] = ..., message: _Optional[str] = ..., attributes: _Optional[_Iterable[_Union[Label, _Mapping]]] = ...) -> None: ...

class LogRecord(_message.Message):
    __slots__ = ("time_unix_ms", "received_delay_ms", "message", "facility", "severity", "host_ref", "app_ref", "procid_ref", "msgid_ref", "device_ref", "structured_data")
    TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FACILITY_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    HOST_REF_FIELD_NUMBER: _ClassVar[int]
    APP_REF_FIELD_NUMBER: _ClassVar[int]
    PROCID_REF_FIELD_NUMBER: _ClassVar[int]
    MSGID_REF_FIELD_NUMBER: _ClassVar[int]
    DEVICE_REF_FIELD_NUMBER: _ClassVar[int]
    STRUCTURED_DATA_FIELD_NUMBER: _ClassVar[int]
    time_unix_ms: int
    received_delay_ms: int
    message: str
    facility: int
    severity: int
    host_ref: int
    app_ref: int
    procid_ref: int
    msgid_ref: int
    device_ref: int
    structured_data: str
    def __init__(self, time_unix_ms: _Optional[int] = ..., received_delay_ms: _Optional[int] = ..., message: _Optional[str] = ..., facility: _Optional[int] = ..., severity: _Optional[int] = ..., host_ref: _Optional[int] = ..., app_ref: _Optional[int] = ..., procid_ref: _Optional[int] = ..., msgid_ref: _Optional[int] = ..., device_ref: _Optional[int] = ..., structured_data: _Optional[str] = ...) -> None: ...

class TargetState(_message.Message):
    __slots__ = ("name", "up", "last_poll_duration_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    LAST_POLL_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    up: bool
    last_poll_duration_ms: int
    def __init__(self, name: _Optional[str] = ..., up: _Optional[bool] = ..., last_poll_duration_ms: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("time_unix_ms", "agent_version", "heartbeat_interval_ms", "spool_records", "spool_bytes", "cert_not_after_unix_ms", "targets")
    TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    SPOOL_RECORDS_FIELD_NUMBER: _ClassVar[int]
    SPOOL_BYTES_FIELD_NUMBER: _ClassVar[int]
    CERT_NOT_AFTER_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    time_unix_ms: int
    agent_version: str
    heartbeat_interval_ms: int
    spool_records: int
    spool_bytes: int
    cert_not_after_unix_ms: int
    targets: _containers.RepeatedCompositeFieldContainer[TargetState]
    def __init__(self, time_unix_ms: _Optional[int] = ..., agent_version: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ..., spool_records: _Optional[int] = ..., spool_bytes: _Optional[int] = ..., cert_not_after_unix_ms: _Optional[int] = ..., targets: _Optional[_Iterable[_Union[TargetState, _Mapping]]] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ("boot_epoch", "seq", "base_time_unix_ms", "batch_class", "symbols", "series", "events", "heartbeat", "logs")
    BOOT_EPOCH_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    BASE_TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    BATCH_CLASS_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    boot_epoch: int
    seq: int
    base_time_unix_ms: int
    batch_class: BatchClass
    symbols: _containers.RepeatedScalarFieldContainer[str]
    series: SeriesColumns
    events: _containers.RepeatedCompositeFieldContainer[Event]
    heartbeat: Heartbeat
    logs: _containers.RepeatedCompositeFieldContainer[LogRecord]
    def __init__(self, boot_epoch: _Optional[int] = ..., seq: _Optional[int] = ..., base_time_unix_ms: _Optional[int] = ..., batch_class: _Optional[_Union[BatchClass, str]] = ..., symbols: _Optional[_Iterable[str]] = ..., series: _Optional[_Union[SeriesColumns, _Mapping]] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., logs: _Optional[_Iterable[_Union[LogRecord, _Mapping]]] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("schema_version", "encoding", "payload", "boot_epoch", "seq", "batch_class", "uncompressed_size", "point_count")
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    BOOT_EPOCH_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    BATCH_CLASS_FIELD_NUMBER: _ClassVar[int]
    UNCOMPRESSED_SIZE_FIELD_NUMBER: _ClassVar[int]
    POINT_COUNT_FIELD_NUMBER: _ClassVar[int]
    schema_version: int
    encoding: Encoding
    payload: bytes
    boot_epoch: int
    seq: int
    batch_class: BatchClass
    uncompressed_size: int
    point_count: int
    def __init__(self, schema_version: _Optional[int] = ..., encoding: _Optional[_Union[Encoding, str]] = ..., payload: _Optional[bytes] = ..., boot_epoch: _Optional[int] = ..., seq: _Optional[int] = ..., batch_class: _Optional[_Union[BatchClass, str]] = ..., uncompressed_size: _Optional[int] = ..., point_count: _Optional[int] = ...) -> None: ...
