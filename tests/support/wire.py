"""Hand-built wire messages for tests that must send what a correct agent never would."""

from __future__ import annotations

from shared.pb.outpost.v1 import batch_pb2 as pb


def raw_single_series_envelope(deltas: list[int], boot_epoch: int = 1, seq: int = 1) -> bytes:
    """An uncompressed envelope with one series `m` whose timestamp deltas are exactly `deltas`."""
    raw = pb.Batch(boot_epoch=boot_epoch, seq=seq, batch_class=pb.BATCH_CLASS_METRICS)
    raw.symbols.extend(["", "m"])
    cols = raw.series
    cols.metric_refs.append(1)
    cols.label_counts.append(0)
    cols.kinds.append(pb.METRIC_KIND_GAUGE)
    cols.unit_refs.append(0)
    cols.point_counts.append(len(deltas))
    cols.time_deltas_ms.extend(deltas)
    cols.values.extend([1.0] * len(deltas))
    env = pb.Envelope(
        schema_version=1,
        encoding=pb.ENCODING_NONE,
        payload=raw.SerializeToString(),
        boot_epoch=boot_epoch,
        seq=seq,
        batch_class=pb.BATCH_CLASS_METRICS,
        uncompressed_size=raw.ByteSize(),
        point_count=len(deltas),
    )
    return env.SerializeToString()
