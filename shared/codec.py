"""The wire codec: model.Batch <-> zstd-compressed outpost.v1.Envelope bytes.

This is the only module that imports the generated protobuf code for batches, so the envelope is
designed in one place: the same bytes are spooled, pushed over gRPC and published to NATS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

import numpy as np
import zstandard

from shared.errors import CodecError
from shared.model import (
    Batch,
    BatchClass,
    Event,
    Heartbeat,
    Limits,
    LogRecord,
    MetricKind,
    SeriesKey,
    SeriesPoints,
    Severity,
    TargetState,
)
from shared.pb.outpost.v1 import batch_pb2 as pb
from shared.pb.outpost.v1 import enroll_pb2 as enroll_pb
from shared.pb.outpost.v1 import ingest_pb2 as ingest_pb

SCHEMA_VERSION = 1
# A decompressed batch larger than this is refused before it is inflated (decompression bombs).
MAX_UNCOMPRESSED_BYTES = 64 * 1024 * 1024
ZSTD_LEVEL = 3

_PB_CLASS = {c: cast(pb.BatchClass, pb.BatchClass.Value(f"BATCH_CLASS_{c.name}")) for c in BatchClass}
_PB_KIND = {k: cast(pb.MetricKind, pb.MetricKind.Value(f"METRIC_KIND_{k.name}")) for k in MetricKind}
_PB_SEVERITY = {s: pb.Severity.Value(f"SEVERITY_{s.name}") for s in Severity}
_U32_MAX = 2**32 - 1
_NAN = float("nan")
_MAX_FACILITY = 23
_MAX_LOG_SEVERITY = 7


class _ThreadContexts(threading.local):
    """One zstd compressor and decompressor per thread: python-zstandard contexts must never be used by
    two threads at once (the hub decodes in up to `max_inflight` threads; sharing one corrupted valid
    batches and crashed the process), and a context per call would cost an allocation per batch."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        self.decompressor = zstandard.ZstdDecompressor()


_zstd = _ThreadContexts()


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """What a receiver learns from an envelope without decompressing it."""

    boot_epoch: int
    seq: int
    batch_class: BatchClass
    point_count: int
    schema_version: int

    @property
    def batch_id(self) -> str:
        return f"{self.boot_epoch}-{self.seq}"


def encode(batch: Batch, compress: bool = True) -> bytes:
    """Serializes a batch into envelope bytes, series laid out column by column.

    Raises:
        CodecError: when a series' timestamps are not strictly increasing or columns differ in length.
    """
    msg = pb.Batch(boot_epoch=batch.boot_epoch, seq=batch.seq, batch_class=_PB_CLASS[batch.batch_class])
    base = _base_time(batch)
    msg.base_time_unix_ms = base
    symbols: dict[str, int] = {"": 0}

    def ref(text: str) -> int:
        idx = symbols.get(text)
        if idx is None:
            idx = symbols[text] = len(symbols)
        return idx

    metric_refs: list[int] = []
    label_counts: list[int] = []
    label_refs: list[int] = []
    kinds: list[pb.MetricKind] = []
    unit_refs: list[int] = []
    counts: list[int] = []
    limited = False
    for s in batch.series:
        n = len(s)
        if s.values.shape[0] != n or (s.scores is not None and s.scores.shape[0] != n):
            raise CodecError("column_length", str(s.key))
        metric_refs.append(ref(s.key.metric))
        label_counts.append(len(s.key.labels))
        for k, v in s.key.labels:
            label_refs += (ref(k), ref(v))
        kinds.append(_PB_KIND[s.kind])
        unit_refs.append(ref(s.unit))
        counts.append(n)
        limited = limited or s.limits is not None
    cols = msg.series
    cols.metric_refs.extend(metric_refs)
    cols.label_counts.extend(label_counts)
    cols.label_refs.extend(label_refs)
    cols.kinds.extend(kinds)
    cols.unit_refs.extend(unit_refs)
    cols.point_counts.extend(counts)
    if limited:  # only then: a batch without limits carries four empty columns, i.e. no bytes at all
        _encode_limits(cols, batch.series)
    if batch.point_count:
        ts = np.concatenate([s.timestamps_ms for s in batch.series])
        deltas = np.diff(ts, prepend=np.int64(base))
        starts = np.cumsum([0, *counts[:-1]])
        starts = starts[np.asarray(counts) > 0]
        first = np.zeros(ts.shape[0], dtype=bool)
        first[starts] = True
        if bool(np.any(deltas[~first] <= 0)):
            raise CodecError("non_monotonic", "timestamps must increase within a series")
        deltas[starts] = ts[starts] - base
        cols.time_deltas_ms.extend(deltas.tolist())
        cols.values.extend(np.concatenate([s.values for s in batch.series]).tolist())
        if any(s.scores is not None for s in batch.series):
            scores = [
                s.scores if s.scores is not None else np.full(len(s), np.nan, np.float32)
                for s in batch.series
            ]
            cols.anomaly_scores.extend(np.concatenate(scores).tolist())
    for r in batch.logs:
        _encode_log(msg.logs.add(), r, ref)
    msg.symbols.extend(symbols)
    for e in batch.events:
        pe = msg.events.add(
            time_unix_ms=e.ts_ms,
            kind=e.kind,
            severity=_PB_SEVERITY[e.severity],
            source=e.source,
            message=e.message,
        )
        for k, v in e.attributes:
            pe.attributes.add(name=k, value=v)
    if batch.heartbeat is not None:
        _encode_heartbeat(msg.heartbeat, batch.heartbeat)
    raw = msg.SerializeToString()
    env = pb.Envelope(
        schema_version=SCHEMA_VERSION,
        encoding=pb.ENCODING_ZSTD if compress else pb.ENCODING_NONE,
        payload=_zstd.compressor.compress(raw) if compress else raw,
        boot_epoch=batch.boot_epoch,
        seq=batch.seq,
        batch_class=_PB_CLASS[batch.batch_class],
        uncompressed_size=len(raw),
        point_count=batch.point_count,
    )
    return env.SerializeToString()


def peek(data: bytes) -> EnvelopeHeader:
    """Reads an envelope's header fields without touching its payload.

    Raises:
        CodecError: when the bytes are not an envelope of a known schema version.
    """
    env = _parse_envelope(data)
    return _header(env)


def decode(data: bytes, max_uncompressed: int = MAX_UNCOMPRESSED_BYTES) -> tuple[EnvelopeHeader, Batch]:
    """Parses envelope bytes back into a batch, validating the wire contract.

    Raises:
        CodecError: malformed bytes, unknown schema version or encoding, oversized payload,
            mismatched column lengths or non-monotonic timestamps.
    """
    env = _parse_envelope(data)
    header = _header(env)
    if env.uncompressed_size > max_uncompressed:
        raise CodecError("oversized", f"{env.uncompressed_size} bytes > {max_uncompressed}")
    if env.encoding == pb.ENCODING_ZSTD:
        try:
            raw = _zstd.decompressor.decompress(env.payload, max_output_size=max(env.uncompressed_size, 1))
        except zstandard.ZstdError as exc:
            raise CodecError("bad_compression", str(exc)) from exc
    elif env.encoding == pb.ENCODING_NONE:
        raw = env.payload
    else:
        raise CodecError("unknown_encoding", str(env.encoding))
    if len(raw) > max_uncompressed:
        raise CodecError("oversized", f"{len(raw)} bytes > {max_uncompressed}")
    msg = pb.Batch()
    try:
        msg.ParseFromString(raw)
    except Exception as exc:  # protobuf raises DecodeError or RuntimeWarning subclasses by backend
        raise CodecError("malformed_batch", type(exc).__name__) from exc
    if msg.boot_epoch != env.boot_epoch or msg.seq != env.seq:
        raise CodecError("id_mismatch", "envelope and batch ids differ")
    symbols = list(msg.symbols)
    series = _series_from_columns(msg.series, symbols, msg.base_time_unix_ms)
    events = tuple(_event_from_pb(pe) for pe in msg.events)
    heartbeat = _heartbeat_from_pb(msg.heartbeat) if msg.HasField("heartbeat") else None
    logs = tuple(_log_from_pb(r, symbols) for r in msg.logs)
    batch = Batch(msg.boot_epoch, msg.seq, series, events, _batch_class(msg.batch_class), heartbeat, logs)
    return header, batch


def _parse_envelope(data: bytes) -> pb.Envelope:
    env = pb.Envelope()
    try:
        env.ParseFromString(data)
    except Exception as exc:
        raise CodecError("malformed_envelope", type(exc).__name__) from exc
    if env.schema_version != SCHEMA_VERSION:
        raise CodecError("unknown_version", f"schema_version={env.schema_version}")
    return env


def _header(env: pb.Envelope) -> EnvelopeHeader:
    return EnvelopeHeader(
        env.boot_epoch, env.seq, _batch_class(env.batch_class), env.point_count, env.schema_version
    )


def _batch_class(value: int) -> BatchClass:
    try:
        return BatchClass(value)
    except ValueError:
        raise CodecError("unknown_batch_class", str(value)) from None


def _base_time(batch: Batch) -> int:
    firsts = [int(s.timestamps_ms[0]) for s in batch.series if len(s)]
    return min(firsts) if firsts else 0


def _encode_limits(cols: pb.SeriesColumns, series: tuple[SeriesPoints, ...]) -> None:
    """Fills the four per-series limit columns, NaN where a series (or its device) has no such limit."""
    none = Limits()
    lims = [s.limits or none for s in series]
    cols.limit_warn_high.extend([_NAN if x.warn_high is None else x.warn_high for x in lims])
    cols.limit_crit_high.extend([_NAN if x.crit_high is None else x.crit_high for x in lims])
    cols.limit_warn_low.extend([_NAN if x.warn_low is None else x.warn_low for x in lims])
    cols.limit_crit_low.extend([_NAN if x.crit_low is None else x.crit_low for x in lims])


def _limits_from_columns(cols: pb.SeriesColumns, n: int) -> list[Limits | None] | None:
    """Per-series limits, or None when the batch carries none (the four columns are empty).

    Raises:
        CodecError: when a limit column is present but does not hold one entry per series.
    """
    columns = (cols.limit_warn_high, cols.limit_crit_high, cols.limit_warn_low, cols.limit_crit_low)
    if not any(len(c) for c in columns):
        return None
    if any(len(c) != n for c in columns):
        raise CodecError("column_length", "limit columns do not hold one entry per series")
    out: list[Limits | None] = []
    for wh, ch, wl, cl in zip(*columns, strict=True):
        vals = [None if v != v else v for v in (wh, ch, wl, cl)]  # NaN: the device gave no such limit
        out.append(None if vals == [None, None, None, None] else Limits(*vals))
    return out


def _encode_heartbeat(out: pb.Heartbeat, hb: Heartbeat) -> None:
    out.time_unix_ms = hb.ts_ms
    out.agent_version = hb.agent_version
    out.heartbeat_interval_ms = min(max(hb.interval_ms, 0), _U32_MAX)
    out.spool_records = max(hb.spool_records, 0)
    out.spool_bytes = max(hb.spool_bytes, 0)
    out.cert_not_after_unix_ms = hb.cert_not_after_ms
    for t in hb.targets:
        # A poll longer than 49 days is reported as the longest representable one, not refused.
        out.targets.add(name=t.name, up=t.up, last_poll_duration_ms=min(max(t.last_poll_ms, 0), _U32_MAX))
    # Present even when every field is at its default, so the receiver can tell "heartbeat" from "none".
    out.SetInParent()


def _heartbeat_from_pb(hb: pb.Heartbeat) -> Heartbeat:
    targets = tuple(TargetState(t.name, t.up, t.last_poll_duration_ms) for t in hb.targets)
    return Heartbeat(
        hb.time_unix_ms,
        hb.agent_version,
        hb.heartbeat_interval_ms,
        hb.spool_records,
        hb.spool_bytes,
        hb.cert_not_after_unix_ms,
        targets,
    )


def _encode_log(out: pb.LogRecord, r: LogRecord, ref: Callable[[str], int]) -> None:
    """Fills one wire log record; the strings that repeat from line to line go through the symbol table.

    Raises:
        CodecError: when facility or severity are outside the syslog ranges.
    """
    if not (0 <= r.facility <= _MAX_FACILITY and 0 <= r.severity <= _MAX_LOG_SEVERITY):
        raise CodecError("bad_log_priority", f"facility={r.facility} severity={r.severity}")
    out.time_unix_ms = r.ts_ms
    out.received_delay_ms = r.received_ms - r.ts_ms
    out.message = r.message
    out.facility = r.facility
    out.severity = r.severity
    out.host_ref = ref(r.host)
    out.app_ref = ref(r.app)
    out.procid_ref = ref(r.procid)
    out.msgid_ref = ref(r.msgid)
    out.device_ref = ref(r.device)
    out.structured_data = r.structured_data


def _log_from_pb(r: pb.LogRecord, symbols: list[str]) -> LogRecord:
    """Rebuilds one log record, validating its priority and symbol references.

    Raises:
        CodecError: a facility or severity outside the syslog ranges, or a reference past the symbols.
    """
    if r.facility > _MAX_FACILITY or r.severity > _MAX_LOG_SEVERITY:
        raise CodecError("bad_log_priority", f"facility={r.facility} severity={r.severity}")
    refs = (r.host_ref, r.app_ref, r.procid_ref, r.msgid_ref, r.device_ref)
    if max(refs) >= len(symbols):
        raise CodecError("bad_symbol_ref", f"log reference past {len(symbols)} symbols")
    host, app, procid, msgid, device = (symbols[i] for i in refs)
    return LogRecord(
        r.time_unix_ms,
        r.time_unix_ms + r.received_delay_ms,
        r.message,
        r.facility,
        r.severity,
        host,
        app,
        procid,
        msgid,
        device,
        r.structured_data,
    )


def _series_from_columns(cols: pb.SeriesColumns, symbols: list[str], base: int) -> tuple[SeriesPoints, ...]:
    """Rebuilds series from the columns with array operations, validating every count and reference."""
    n = len(cols.metric_refs)
    if not (len(cols.label_counts) == len(cols.kinds) == len(cols.unit_refs) == len(cols.point_counts) == n):
        raise CodecError("column_length", "per-series columns differ in length")
    counts = np.array(cols.point_counts, dtype=np.int64)
    label_counts = np.array(cols.label_counts, dtype=np.int64)
    label_refs = np.array(cols.label_refs, dtype=np.int64)
    metric_refs = np.array(cols.metric_refs, dtype=np.int64)
    unit_refs = np.array(cols.unit_refs, dtype=np.int64)
    deltas = np.array(cols.time_deltas_ms, dtype=np.int64)
    values = np.array(cols.values, dtype=np.float64)
    total = int(counts.sum())
    if deltas.shape[0] != total or values.shape[0] != total:
        raise CodecError(
            "column_length",
            f"{total} points announced, {deltas.shape[0]} timestamps, {values.shape[0]} values",
        )
    if label_refs.shape[0] != 2 * int(label_counts.sum()):
        raise CodecError("column_length", "label_refs do not match label_counts")
    for refs in (metric_refs, label_refs, unit_refs):
        if refs.shape[0] and int(refs.max()) >= len(symbols):
            raise CodecError("bad_symbol_ref", f"reference past {len(symbols)} symbols")
    scores_all = None
    if len(cols.anomaly_scores):
        scores_all = np.array(cols.anomaly_scores, dtype=np.float32)
        if scores_all.shape[0] != total:
            raise CodecError("column_length", "anomaly_scores do not match points")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])) if n else counts
    first = np.zeros(total, dtype=bool)
    first[starts[counts > 0]] = True
    if bool(np.any(deltas[~first] <= 0)):
        raise CodecError("non_monotonic", "timestamps must increase within a series")
    csum = np.cumsum(deltas)
    before = np.concatenate(([0], csum))[starts] if n else csum
    ts = csum - np.repeat(before, counts) + np.int64(base)
    kinds = [_metric_kind(k) for k in cols.kinds]
    limits = _limits_from_columns(cols, n)
    out = []
    label_pos = 0
    for i in range(n):
        nl = int(label_counts[i])
        pairs = label_refs[label_pos : label_pos + 2 * nl].tolist()
        label_pos += 2 * nl
        metric = symbols[int(metric_refs[i])]
        if not metric:
            raise CodecError("empty_metric", "series without a metric name")
        key = SeriesKey.of(
            metric, {symbols[pairs[j]]: symbols[pairs[j + 1]] for j in range(0, len(pairs), 2)}
        )
        a, b = int(starts[i]), int(starts[i] + counts[i])
        sc = None
        if scores_all is not None and b > a and not bool(np.all(np.isnan(scores_all[a:b]))):
            sc = scores_all[a:b]
        lim = limits[i] if limits is not None else None
        out.append(SeriesPoints(key, ts[a:b], values[a:b], kinds[i], symbols[int(unit_refs[i])], sc, lim))
    return tuple(out)


def _metric_kind(value: int) -> MetricKind:
    try:
        return MetricKind(value) if value else MetricKind.GAUGE
    except ValueError:
        raise CodecError("unknown_metric_kind", str(value)) from None


def _event_from_pb(pe: pb.Event) -> Event:
    try:
        severity = Severity(pe.severity) if pe.severity else Severity.INFO
    except ValueError:
        raise CodecError("unknown_severity", str(pe.severity)) from None
    attrs = tuple((a.name, a.value) for a in pe.attributes)
    return Event(pe.time_unix_ms, pe.kind, severity, pe.source, pe.message, attrs)


# --- The gRPC Push call, in bytes: transports pass envelopes through without re-parsing them. ---

PUSH_METHOD = "/outpost.v1.IngestService/Push"


@dataclass(frozen=True, slots=True)
class PushResult:
    """The hub's answer to one Push (mirrors outpost.v1.PushResponse)."""

    accepted_points: int = 0
    rejected_points: int = 0
    duplicate: bool = False
    retry_after_ms: int = 0
    error_message: str = ""


def push_request(envelope: bytes) -> bytes:
    """Serializes PushRequest{envelope} around already-encoded envelope bytes (field 1, length-delimited)."""
    return b"\x0a" + _varint(len(envelope)) + envelope


def envelope_of_push_request(data: bytes) -> bytes:
    """Extracts the envelope bytes from a serialized PushRequest.

    Raises:
        CodecError: when the bytes are not a PushRequest.
    """
    req = ingest_pb.PushRequest()
    try:
        req.ParseFromString(data)
    except Exception as exc:
        raise CodecError("malformed_request", type(exc).__name__) from exc
    return req.envelope.SerializeToString()


def push_response(result: PushResult) -> bytes:
    msg = ingest_pb.PushResponse(
        accepted_points=result.accepted_points,
        rejected_points=result.rejected_points,
        duplicate=result.duplicate,
        retry_after_ms=result.retry_after_ms,
    )
    if result.error_message or result.rejected_points:
        msg.partial_success.rejected_points = result.rejected_points
        msg.partial_success.error_message = result.error_message
    return msg.SerializeToString()


def parse_push_response(data: bytes) -> PushResult:
    msg = ingest_pb.PushResponse()
    try:
        msg.ParseFromString(data)
    except Exception as exc:
        raise CodecError("malformed_response", type(exc).__name__) from exc
    return PushResult(
        msg.accepted_points,
        msg.rejected_points,
        msg.duplicate,
        msg.retry_after_ms,
        msg.partial_success.error_message,
    )


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


# --- Enrollment and renewal messages (outpost/v1/enroll.proto). ---

RENEW_METHOD = "/outpost.v1.CertificateService/Renew"


@dataclass(frozen=True, slots=True)
class EnrollRequest:
    """An agent asking to be enrolled: token secret, wanted agent id, and its CSR (never its key)."""

    token: str
    agent_name: str
    csr_der: bytes


@dataclass(frozen=True, slots=True)
class EnrollResponse:
    certificate_pem: bytes
    ca_pem: bytes
    identity: str


def encode_enroll_request(req: EnrollRequest) -> bytes:
    msg = enroll_pb.EnrollRequest(token=req.token, agent_name=req.agent_name, csr_der=req.csr_der)
    return msg.SerializeToString()


def decode_enroll_request(data: bytes) -> EnrollRequest:
    """Raises CodecError when the bytes are not an EnrollRequest."""
    msg = _parse(enroll_pb.EnrollRequest(), data, "malformed_enroll_request")
    return EnrollRequest(msg.token, msg.agent_name, msg.csr_der)


def encode_enroll_response(resp: EnrollResponse) -> bytes:
    return enroll_pb.EnrollResponse(
        certificate_pem=resp.certificate_pem, ca_pem=resp.ca_pem, identity=resp.identity
    ).SerializeToString()


def decode_enroll_response(data: bytes) -> EnrollResponse:
    """Raises CodecError when the bytes are not an EnrollResponse."""
    msg = _parse(enroll_pb.EnrollResponse(), data, "malformed_enroll_response")
    return EnrollResponse(msg.certificate_pem, msg.ca_pem, msg.identity)


def renew_request(csr_der: bytes) -> bytes:
    return enroll_pb.RenewRequest(csr_der=csr_der).SerializeToString()


def csr_of_renew_request(data: bytes) -> bytes:
    """Raises CodecError when the bytes are not a RenewRequest."""
    return bytes(_parse(enroll_pb.RenewRequest(), data, "malformed_renew_request").csr_der)


def renew_response(certificate_pem: bytes) -> bytes:
    return enroll_pb.RenewResponse(certificate_pem=certificate_pem).SerializeToString()


def certificate_of_renew_response(data: bytes) -> bytes:
    """Raises CodecError when the bytes are not a RenewResponse."""
    return bytes(_parse(enroll_pb.RenewResponse(), data, "malformed_renew_response").certificate_pem)


_M = TypeVar(
    "_M", enroll_pb.EnrollRequest, enroll_pb.EnrollResponse, enroll_pb.RenewRequest, enroll_pb.RenewResponse
)


def _parse(msg: _M, data: bytes, reason: str) -> _M:
    try:
        msg.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError or RuntimeWarning subclasses by backend
        raise CodecError(reason, type(exc).__name__) from exc
    return msg
