"""Prometheus remote write 1.0 (snappy-compressed protobuf `WriteRequest`) as the hub's series.

The one module that imports the snappy codec (cramjam) and the generated Prometheus protobuf. Mapping:
`__name__` -> metric, the other labels -> labels; sample timestamps are milliseconds already. NaN
samples (Prometheus's staleness markers are NaNs) are left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import cramjam
import numpy as np
from google.protobuf.message import DecodeError

from shared.model import SeriesKey, SeriesPoints
from shared.pb.prometheus.v1 import remote_pb2

NAME_LABEL = "__name__"
MAX_VARINT_BYTES = 10


class RemoteWriteError(ValueError):
    """Raised for a body that is not a snappy-compressed WriteRequest; `too_large` when it would
    unpack past the limit."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True, slots=True)
class ParsedWrite:
    """The series of a WriteRequest and what was left out."""

    series: tuple[SeriesPoints, ...]
    nameless: int  # series without `__name__`
    nan_samples: int

    @property
    def points(self) -> int:
        return sum(len(s) for s in self.series)


def uncompressed_length(body: bytes) -> int:
    """The length a snappy block says it unpacks to (its leading varint), read before unpacking.

    Raises:
        RemoteWriteError: the body does not start with a varint.
    """
    value = shift = 0
    for i, byte in enumerate(body[:MAX_VARINT_BYTES]):
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7
        if i == MAX_VARINT_BYTES - 1:
            break
    raise RemoteWriteError("body is not a snappy block")


def parse(body: bytes, max_uncompressed: int) -> ParsedWrite:
    """Unpacks and decodes one remote-write request.

    Raises:
        RemoteWriteError: not snappy, not a WriteRequest, or over `max_uncompressed` once unpacked.
    """
    if uncompressed_length(body) > max_uncompressed:
        raise RemoteWriteError(f"body unpacks to over {max_uncompressed} bytes", too_large=True)
    try:
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise RemoteWriteError(f"body is not a snappy block: {exc}") from None
    try:
        request = remote_pb2.WriteRequest.FromString(raw)
    except DecodeError as exc:
        raise RemoteWriteError(f"body is not a remote-write WriteRequest: {exc}") from None
    series: list[SeriesPoints] = []
    nameless = nans = 0
    for ts in request.timeseries:
        labels = {label.name: label.value for label in ts.labels}
        metric = labels.pop(NAME_LABEL, "")
        if not metric:
            nameless += 1
            continue
        if not ts.samples:
            continue
        stamps = np.fromiter((s.timestamp for s in ts.samples), dtype=np.int64, count=len(ts.samples))
        values = np.fromiter((s.value for s in ts.samples), dtype=np.float64, count=len(ts.samples))
        keep = ~np.isnan(values)
        nans += int(keep.size - np.count_nonzero(keep))
        stamps, values = stamps[keep], values[keep]
        if stamps.shape[0] > 1 and not bool(np.all(stamps[1:] > stamps[:-1])):
            order = np.argsort(stamps, kind="stable")
            stamps, values = stamps[order], values[order]
            last = np.append(stamps[1:] != stamps[:-1], True)
            stamps, values = stamps[last], values[last]
        if stamps.shape[0]:
            series.append(SeriesPoints(SeriesKey.of(metric, labels), stamps, values))
    return ParsedWrite(tuple(series), nameless, nans)


def encode(series: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> bytes:
    """A snappy-compressed WriteRequest of (labels with `__name__`, [(ms, value)]) pairs: what a
    Prometheus sends, for tests and benches."""
    request = remote_pb2.WriteRequest()
    for labels, samples in series:
        ts = request.timeseries.add()
        for name, value in sorted(labels.items()):
            ts.labels.add(name=name, value=value)
        for ms, sample in samples:
            ts.samples.add(value=sample, timestamp=ms)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
