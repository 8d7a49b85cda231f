"""Log records on the wire: any list of them round-trips exactly inside a batch, repeated strings go
through the symbol table once, and hostile records are refused with a reason."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import codec
from shared.errors import CodecError
from shared.model import Batch, BatchClass, Event, LogRecord, Severity
from shared.pb.outpost.v1 import batch_pb2 as pb

pytestmark = pytest.mark.unit

_ts = st.integers(-(2**50), 2**50)
# Short alphabets make hosts and apps repeat across records, which is what the symbol table is for.
_name = st.sampled_from(["", "sw1", "core-rtr.example", "bmc-07", "żółw", "日本"]) | st.text(max_size=12)
_records = st.builds(
    LogRecord,
    _ts,
    _ts,
    st.text(max_size=300),
    st.integers(0, 23),
    st.integers(0, 7),
    _name,
    _name,
    st.text(max_size=8),
    st.text(max_size=8),
    _name,
    st.text(max_size=40),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_records, max_size=20), st.booleans(), st.integers(1, 2**40))
def test_any_list_of_log_records_decodes_to_itself(logs: list[LogRecord], compress: bool, seq: int) -> None:
    batch = Batch(5, seq, batch_class=BatchClass.LOGS, logs=tuple(logs))
    header, decoded = codec.decode(codec.encode(batch, compress=compress))
    assert (header.batch_class, header.point_count) == (BatchClass.LOGS, 0)
    assert decoded.logs == batch.logs
    assert decoded.batch_class is BatchClass.LOGS and decoded.series == () and decoded.events == ()


def test_a_64_kib_unicode_message_and_empty_fields_travel_intact() -> None:
    big = ("ünïcødé ✓ 日本語 " * 6000)[: 64 * 1024]
    logs = (
        LogRecord(
            1_700_000_000_000, 1_700_000_000_250, big, 4, 2, "sw1", "kernel", "17", "ID1", "sw1", '[a b="c"]'
        ),
        LogRecord(0, 0, ""),  # nothing but defaults
    )
    _, decoded = codec.decode(codec.encode(Batch(1, 1, batch_class=BatchClass.LOGS, logs=logs)))
    assert decoded.logs == logs
    assert len(decoded.logs[0].message) == 64 * 1024


def test_hosts_apps_and_devices_repeated_on_every_line_are_sent_once() -> None:
    logs = tuple(
        LogRecord(1_000 + i, 1_001 + i, f"line {i}", host="core-rtr", app="bgpd", device="rtr1")
        for i in range(500)
    )
    data = codec.encode(Batch(1, 1, batch_class=BatchClass.LOGS, logs=logs), compress=False)
    raw = pb.Batch()
    raw.ParseFromString(pb.Envelope.FromString(data).payload)
    assert sorted(raw.symbols) == ["", "bgpd", "core-rtr", "rtr1"]
    assert raw.logs[7].received_delay_ms == 1 and raw.logs[7].host_ref == raw.logs[499].host_ref


def test_a_batch_from_an_agent_without_log_collection_decodes_with_no_logs() -> None:
    old = pb.Batch(boot_epoch=2, seq=9, batch_class=pb.BATCH_CLASS_EVENTS)
    old.events.add(
        time_unix_ms=5, kind="snmp.trap", severity=pb.SEVERITY_INFO, source="sw1", message="linkUp"
    )
    env = pb.Envelope(
        schema_version=codec.SCHEMA_VERSION,
        encoding=pb.ENCODING_NONE,
        payload=old.SerializeToString(),
        boot_epoch=2,
        seq=9,
        batch_class=pb.BATCH_CLASS_EVENTS,
        uncompressed_size=old.ByteSize(),
    )
    _, batch = codec.decode(env.SerializeToString())
    assert batch.logs == ()
    assert batch.events == (Event(5, "snmp.trap", Severity.INFO, "sw1", "linkUp"),)


def _wire_logs(record: pb.LogRecord, symbols: list[str]) -> bytes:
    raw = pb.Batch(boot_epoch=1, seq=1, batch_class=pb.BATCH_CLASS_LOGS, symbols=symbols)
    raw.logs.append(record)
    return pb.Envelope(
        schema_version=codec.SCHEMA_VERSION,
        encoding=pb.ENCODING_NONE,
        payload=raw.SerializeToString(),
        boot_epoch=1,
        seq=1,
        batch_class=pb.BATCH_CLASS_LOGS,
        uncompressed_size=raw.ByteSize(),
    ).SerializeToString()


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (pb.LogRecord(message="x", host_ref=3), "bad_symbol_ref"),
        (pb.LogRecord(message="x", device_ref=2**31), "bad_symbol_ref"),
        (pb.LogRecord(message="x", facility=24), "bad_log_priority"),
        (pb.LogRecord(message="x", severity=8), "bad_log_priority"),
    ],
)
def test_decode_refuses_hostile_log_records_with_a_reason(record: pb.LogRecord, reason: str) -> None:
    with pytest.raises(CodecError) as err:
        codec.decode(_wire_logs(record, ["", "sw1"]))
    assert err.value.reason == reason


def test_encode_refuses_a_priority_outside_syslog_ranges() -> None:
    with pytest.raises(CodecError) as err:
        codec.encode(Batch(1, 1, batch_class=BatchClass.LOGS, logs=(LogRecord(0, 0, "x", severity=9),)))
    assert err.value.reason == "bad_log_priority"
