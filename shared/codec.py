"""The wire codec: model.Batch <-> zstd-compressed outpost.v1.Envelope bytes.

This is the only module that imports the generated protobuf code for batches, so the envelope is
designed in one place: the same bytes are spooled, pushed over gRPC and published to NATS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import zstandard

from shared.errors import CodecError
from shared.model import Batch, BatchClass, Event, MetricKind, SeriesKey, SeriesPoints, Severity
from shared.pb.outpost.v1 import batch_pb2 as pb
from shared.pb.outpost.v1 import ingest_pb2 as ingest_pb

SCHEMA_VERSION = 1
# A decompressed batch larger than this is refused before it is inflated (decompression bombs).
MAX_UNCOMPRESSED_BYTES = 64 * 1024 * 1024
ZSTD_LEVEL = 3

_PB_CLASS = {c: cast(pb.BatchClass, pb.BatchClass.Value(f"BATCH_CLASS_{c.name}")) for c in BatchClass}
_PB_KIND = {k: pb.MetricKind.Value(f"METRIC_KIND_{k.name}") for k in MetricKind}
_PB_SEVERITY = {s: pb.Severity.Value(f"SEVERITY_{s.name}") for s in Severity}

_compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
_decompressor = zstandard.ZstdDecompressor()


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
    """Serializes a batch into envelope bytes.

    Raises:
        CodecError: when a series' timestamps are not strictly increasing or columns differ in length.
    """
    msg = pb.Batch(boot_epoch=batch.boot_epoch, seq=batch.seq, batch_class=_PB_CLASS[batch.batch_class])
    base = _base_time(batch)
    msg.base_time_unix_ms = base
    for s in batch.series:
        _check_series(s)
        ps = msg.series.add(metric=s.key.metric, kind=_PB_KIND[s.kind], unit=s.unit)
        for k, v in s.key.labels:
            ps.labels.add(name=k, value=v)
        if len(s):
            deltas = np.diff(s.timestamps_ms, prepend=np.int64(base))
            ps.time_deltas_ms.extend(deltas.tolist())
            ps.values.extend(s.values.tolist())
            if s.scores is not None:
                ps.anomaly_scores.extend(s.scores.tolist())
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
    raw = msg.SerializeToString()
    env = pb.Envelope(
        schema_version=SCHEMA_VERSION,
        encoding=pb.ENCODING_ZSTD if compress else pb.ENCODING_NONE,
        payload=_compressor.compress(raw) if compress else raw,
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
            raw = _decompressor.decompress(env.payload, max_output_size=max(env.uncompressed_size, 1))
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
    series = tuple(_series_from_pb(ps, msg.base_time_unix_ms) for ps in msg.series)
    events = tuple(_event_from_pb(pe) for pe in msg.events)
    batch = Batch(msg.boot_epoch, msg.seq, series, events, _batch_class(msg.batch_class))
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


def _check_series(s: SeriesPoints) -> None:
    n = len(s)
    if s.values.shape[0] != n or (s.scores is not None and s.scores.shape[0] != n):
        raise CodecError("column_length", str(s.key))
    if n > 1 and not bool(np.all(s.timestamps_ms[1:] > s.timestamps_ms[:-1])):
        raise CodecError("non_monotonic", str(s.key))


def _series_from_pb(ps: pb.Series, base: int) -> SeriesPoints:
    deltas = np.fromiter(ps.time_deltas_ms, dtype=np.int64, count=len(ps.time_deltas_ms))
    values = np.fromiter(ps.values, dtype=np.float64, count=len(ps.values))
    key = SeriesKey(ps.metric, tuple((lb.name, lb.value) for lb in ps.labels))
    if not ps.metric:
        raise CodecError("empty_metric", "series without a metric name")
    if deltas.shape[0] != values.shape[0]:
        raise CodecError("column_length", str(key))
    if deltas.shape[0] > 1 and bool(np.any(deltas[1:] <= 0)):
        raise CodecError("non_monotonic", str(key))
    scores = None
    if len(ps.anomaly_scores):
        if len(ps.anomaly_scores) != values.shape[0]:
            raise CodecError("column_length", f"{key} anomaly_scores")
        scores = np.fromiter(ps.anomaly_scores, dtype=np.float32, count=len(ps.anomaly_scores))
    try:
        kind = MetricKind(ps.kind) if ps.kind else MetricKind.GAUGE
    except ValueError:
        raise CodecError("unknown_metric_kind", str(ps.kind)) from None
    ts = np.cumsum(deltas) + np.int64(base) if deltas.shape[0] else deltas
    return SeriesPoints(key, ts, values, kind, ps.unit, scores)


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
