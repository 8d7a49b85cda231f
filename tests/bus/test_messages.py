"""Bus messages: every message round-trips through JSON exactly; bad bytes are one clear MessageError."""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.bus.errors import MessageError, UnknownTopic
from hub.bus.messages import (
    _ID_SAFE,
    ALERTS_PER_MESSAGE,
    MAX_MESSAGE_BYTES,
    MESSAGES,
    AgentSeen,
    AlertCommand,
    AlertsChanged,
    AnomalyReported,
    BatchStored,
    FloatColumn,
    IntColumn,
    Labels,
    Message,
    PointsPushed,
    _id_part,
    decode,
)

pytestmark = pytest.mark.unit

_floats = st.floats(allow_nan=False, allow_infinity=False)
_labels = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4).map(
    lambda d: tuple(sorted(d.items()))
)


def _strategy(hint: Any) -> st.SearchStrategy[Any]:
    if hint is str:
        return st.text(max_size=30)
    if hint is int:
        return st.integers(-(2**63), 2**63)
    if hint is float:
        return _floats
    if hint == (float | None):
        return st.none() | _floats
    if hint == tuple[str, ...]:
        return st.lists(st.text(max_size=10), max_size=4).map(tuple)
    if hint == Labels:
        return _labels
    if hint == IntColumn:
        return st.lists(st.integers(-(2**63), 2**63 - 1), max_size=4)
    if hint == FloatColumn:
        return st.lists(_floats, max_size=4)
    if typing.get_origin(hint) is typing.Literal:
        return st.sampled_from(typing.get_args(hint))
    raise AssertionError(f"no strategy for {hint!r}")


def _message(cls: type[Message]) -> st.SearchStrategy[Message]:
    hints = typing.get_type_hints(cls)
    # Wire fields only: an in-process field (`local` metadata) is the publisher's to fill.
    fields = {
        f.name: _strategy(hints[f.name]) for f in dataclasses.fields(cls) if not f.metadata.get("local")
    }
    fields["id"] = st.text(min_size=1, max_size=60)
    if cls is AlertsChanged:  # its columns are one alert per row: as long as each other
        return st.lists(st.tuples(*[st.text(max_size=10)] * 5), min_size=1, max_size=4).flatmap(
            lambda rows: st.builds(cls, **{**fields, **_alert_columns(rows)})
        )
    return st.builds(cls, **fields)


def _alert_columns(rows: list[tuple[str, ...]]) -> dict[str, st.SearchStrategy[tuple[str, ...]]]:
    columns = zip(*rows, strict=True)
    return {name: st.just(tuple(c)) for name, c in zip(_ALERT_COLUMNS, columns, strict=True)}


_ALERT_COLUMNS = ("alert_ids", "fingerprints", "statuses", "severities", "changes")


def test_alerts_changed_refuses_columns_of_different_lengths_and_splits_a_big_step() -> None:
    rows = [(f"a{i}", f"f{i}", "firing", "warning", "created") for i in range(ALERTS_PER_MESSAGE + 1)]
    big = AlertsChanged.of(rows, 5)
    assert [len(m.alert_ids) for m in big] == [ALERTS_PER_MESSAGE, 1]
    assert all(len(m.to_bytes()) < MAX_MESSAGE_BYTES for m in big)
    assert AlertsChanged.of(rows, 5) == big and big[0].id != big[1].id  # the same step, the same ids
    (one,) = AlertsChanged.of(rows[:1], 5)
    data = json.loads(one.to_bytes())
    data["statuses"] = ["firing", "firing"]
    with pytest.raises(MessageError, match="every column as long as alert_ids"):
        decode(AlertsChanged.TOPIC, json.dumps(data).encode())


any_message = st.one_of(*(_message(cls) for cls in MESSAGES.values()))


@settings(max_examples=300, deadline=None)
@given(any_message)
def test_every_message_round_trips_through_its_bytes(msg: Message) -> None:
    back = decode(msg.TOPIC, msg.to_bytes())
    assert back == msg
    assert type(back) is type(msg)
    assert hash(back) == hash(msg)


def _pushed(**over: Any) -> PointsPushed:
    fields: dict[str, Any] = {
        "agent": "push:telegraf",
        "batch_id": "1-2",
        "part": 0,
        "series": '[["cpu_idle", []]]',
        "counts": [2],
        "ts_ms": [1000, 2000],
        "values": [1.0, 2.5],
    }
    return PointsPushed.create(**{**fields, **over})


def test_point_columns_from_numpy_equal_those_from_lists_and_are_read_only() -> None:
    ts = np.array([1000, 2000], dtype=np.int64)
    msg = _pushed(counts=np.array([2]), ts_ms=ts, values=np.array([1.0, 2.5]))
    assert msg == _pushed() and hash(msg) == hash(_pushed())
    assert msg != _pushed(values=[1.0, 2.6])
    assert msg.ts_ms.dtype == np.int64 and not msg.ts_ms.flags.writeable
    ts[0] = 5  # the publisher's column stays its own: the message holds a copy
    assert msg.ts_ms.tolist() == [1000, 2000] and json.loads(msg.to_bytes())["ts_ms"] == [1000, 2000]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ts_ms", [1, True]),
        ("ts_ms", [2**63]),
        ("ts_ms", np.array([1.5, 2.0])),
        ("values", [1.0, float("nan")]),
        ("values", np.array([np.inf, 1.0])),
        ("values", ["1", 2.0]),
        ("counts", np.zeros((1, 2), dtype=np.int64)),
    ],
)
def test_a_point_column_of_the_wrong_kind_is_one_message_error(field: str, value: object) -> None:
    with pytest.raises(MessageError, match=field):
        _pushed(**{field: value})


def test_registry_names_each_class_by_its_own_topic() -> None:
    assert {topic: cls.TOPIC for topic, cls in MESSAGES.items()} == {t: t for t in MESSAGES}
    assert len(MESSAGES) == 12


def test_batch_id_is_derived_from_agent_and_batch_id() -> None:
    msg = BatchStored.create(agent="dc1/edge1", batch_id="17-7", points=120, max_ts_ms=1_700_000_000_000)
    assert msg.id == "batch:dc1/edge1:17-7"
    assert msg == BatchStored("batch:dc1/edge1:17-7", "dc1/edge1", "17-7", 120, 1_700_000_000_000)


def _anomaly(**over: Any) -> AnomalyReported:
    fields: dict[str, Any] = {
        "agent": "dc1/edge1",
        "device": "sw1",
        "metric": "if_in_octets",
        "labels": {"ifName": "Gi0/1", "dir": "in"},
        "ts_ms": 1000,
        "score": 0.93,
        "severity": "warning",
        "phase": "onset",
        "value": 12.5,
    }
    return AnomalyReported.create(**{**fields, **over})


def test_label_order_does_not_change_the_message_or_its_id() -> None:
    a = _anomaly(labels={"ifName": "Gi0/1", "dir": "in"})
    b = _anomaly(labels=(("dir", "in"), ("ifName", "Gi0/1")))
    assert a == b
    assert a.labels == (("dir", "in"), ("ifName", "Gi0/1"))
    assert a.id == "anomaly:dc1/edge1:sw1:if_in_octets:dir=in,ifName=Gi0/1:1000:onset"
    assert json.loads(a.to_bytes())["labels"] == {"dir": "in", "ifName": "Gi0/1"}


def test_separators_inside_fields_cannot_make_two_sources_share_an_id() -> None:
    a = _anomaly(device="fe80::1", metric="x")
    b = _anomaly(device="fe80:", metric=":1:x")
    assert a.id != b.id
    assert _anomaly(phase="end").id != _anomaly(phase="onset").id


@given(st.one_of(st.text(), st.text(alphabet="abcXYZ019_.~/=@+-:% é"), st.integers()))
def test_an_id_part_is_what_url_quoting_makes_of_it_so_ids_stay_as_older_hubs_made_them(
    value: str | int,
) -> None:
    assert _id_part(value) == quote(str(value), safe=_ID_SAFE)


def test_an_integer_where_a_float_is_expected_is_accepted_as_a_float() -> None:
    data = json.loads(_anomaly().to_bytes())
    data["score"] = 1
    back = decode("anomaly.reported", json.dumps(data).encode())
    assert back.score == 1.0 and type(back.score) is float  # type: ignore[union-attr]


def _good() -> dict[str, Any]:
    return json.loads(_anomaly().to_bytes())  # type: ignore[no-any-return]


def _bytes(obj: Any) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"{", "not JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (_bytes({k: v for k, v in _good().items() if k != "score"}), "missing fields ['score']"),
        (_bytes({**_good(), "payload": "x"}), "unexpected fields ['payload']"),
        (_bytes({**_good(), "ts_ms": "1000"}), "ts_ms: expected an integer, got str"),
        (_bytes({**_good(), "ts_ms": True}), "ts_ms: expected an integer, got bool"),
        (_bytes({**_good(), "score": None}), "score: expected a number, got NoneType"),
        (_bytes({**_good(), "phase": "start"}), "phase: expected one of ['onset', 'end'], got 'start'"),
        (_bytes({**_good(), "labels": ["a"]}), "labels: expected (name, value) pairs"),
        (_bytes({**_good(), "labels": {"a": 1}}), "labels: expected a string, got int"),
        (_bytes({**_good(), "labels": [["a", "1"], ["a", "2"]]}), "labels: label 'a' given twice"),
        (_bytes({**_good(), "id": ""}), "id: must be 1..512 characters"),
        (_bytes(_good()).replace(b"0.93", b"NaN"), "NaN is not a number the bus carries"),
        (_bytes(_good()).replace(b"0.93", b"1e999"), "score: inf is not finite"),
        (b" " * (MAX_MESSAGE_BYTES + 1), f"{MAX_MESSAGE_BYTES + 1} bytes, more than {MAX_MESSAGE_BYTES}"),
    ],
)
def test_malformed_bytes_are_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(MessageError) as err:
        decode("anomaly.reported", data)
    assert err.value.topic == "anomaly.reported"
    assert reason in err.value.reason


def test_unknown_topic_is_refused_before_reading_the_data() -> None:
    with pytest.raises(UnknownTopic) as err:
        decode("batch.deleted", b"not even json")
    assert str(err.value) == "bus message 'batch.deleted': unknown topic"


def test_a_message_with_a_wrong_field_cannot_be_built_so_it_never_reaches_the_wire() -> None:
    with pytest.raises(MessageError, match="spool_depth: expected an integer, got float"):
        AgentSeen("seen:a:1", "a", 1, 30.0, "1.0", 2.5, 0, (), ())  # type: ignore[arg-type]
    with pytest.raises(MessageError, match="score: nan is not finite"):
        _anomaly(score=float("nan"))
    with pytest.raises(MessageError, match="create\\(\\) needs batch_id"):
        BatchStored.create(agent="a", points=1, max_ts_ms=1)


def test_alert_commands_get_random_ids_so_two_alike_are_two_commands() -> None:
    a = AlertCommand.new("ack", "0190aa", "alice", "{}", 5)
    b = AlertCommand.new("ack", "0190aa", "alice", "{}", 5)
    assert a.id != b.id and a.id.startswith("cmd:") and len(a.id) == 36
    assert decode("alert.command", a.to_bytes()) == a
    with pytest.raises(MessageError, match="payload"):
        AlertCommand("cmd:x", "ack", "t", "alice", 7, 5)  # type: ignore[arg-type]
