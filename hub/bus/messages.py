"""The bus's messages: small typed references to what happened (the payload stays in the store).

Every message has an `id` so consumers are idempotent: the bus delivers at least once (a redelivery after
a failed handler, a worker that died before acking), and a consumer that has seen an id skips it. Ids are
deterministic where the source has an identity (`create()` derives them from `ID_FIELDS`), so the same
fact published twice, by a retry or by two hub processes, carries the same id and NATS JetStream drops
the second copy inside its dedup window.

On the wire a message is a JSON object of exactly its fields (label sets as objects, tuples as arrays);
`decode(topic, data)` checks every field, so a bad message is one `MessageError`, never a half-built one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import secrets
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self
from urllib.parse import quote

import numpy as np
import numpy.typing as npt

from hub.bus.errors import MessageError, UnknownTopic
from shared.model import SeriesKey

Labels = tuple[tuple[str, str], ...]
# Point columns (PointsPushed): numpy in the process, JSON arrays on the wire; read-only once checked.
IntColumn = npt.NDArray[np.int64]
FloatColumn = npt.NDArray[np.float64]
Phase = Literal["onset", "end"]
Verdict = Literal["confirmed", "dismissed", "unscored"]

# Field metadata of a value that stays in the process: not on the wire, not checked, not compared.
_LOCAL: Mapping[str, bool] = {"local": True}
# Messages are references, not payloads: anything bigger than this on the wire is refused.
MAX_MESSAGE_BYTES = 64 * 1024
MAX_ID_CHARS = 512
# The characters `quote(..., safe=_ID_SAFE)` never escapes.
_ID_SAFE = "/=.-_@+"
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~/=@+-]*")


@dataclass(frozen=True, slots=True)
class _Message:
    """Validation, canonical form and JSON shared by every message class."""

    TOPIC: ClassVar[str]
    # `create()` builds the id as "<ID_PREFIX>:<field>:<field>..." from these fields.
    ID_PREFIX: ClassVar[str]
    ID_FIELDS: ClassVar[tuple[str, ...]]

    def __post_init__(self) -> None:
        for name, convert, plain in _CHECKS[type(self)]:
            raw = getattr(self, name)
            if type(raw) is plain:
                continue  # a str for a str field, an int for an int one: nothing to check or convert
            try:
                value = convert(raw)
            except (TypeError, ValueError) as exc:
                raise MessageError(self.TOPIC, f"{name}: {exc}") from None
            if value is not raw:
                object.__setattr__(self, name, value)  # canonical form (sorted labels, tuples, floats)
        ident = getattr(self, "id")  # noqa: B009 - the base class declares no fields of its own
        if not ident or len(ident) > MAX_ID_CHARS:
            raise MessageError(self.TOPIC, f"id: must be 1..{MAX_ID_CHARS} characters")

    @classmethod
    def create(cls, **fields: Any) -> Self:
        """Builds the message with its deterministic id (`ID_PREFIX` and the `ID_FIELDS` values)."""
        try:
            parts = [_id_part(fields[f]) for f in cls.ID_FIELDS]
        except KeyError:
            missing = [f for f in cls.ID_FIELDS if f not in fields]
            raise MessageError(cls.TOPIC, f"create() needs {', '.join(missing)}") from None
        build: Callable[..., Self] = cls  # the subclasses' generated __init__ takes the fields
        return build(id=":".join([cls.ID_PREFIX, *parts]), **fields)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this message: label sets as objects, tuples as arrays."""
        out: dict[str, Any] = {}
        for name in _SPECS[type(self)]:
            value = getattr(self, name)
            if name in _LABEL_FIELDS[type(self)]:
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, np.ndarray):
                value = value.tolist()
            out[name] = value
        return out

    def to_bytes(self) -> bytes:
        """Compact UTF-8 JSON; never fails for a constructed message (fields were checked)."""
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class BatchStored(_Message):
    """An agent's batch is durably stored: detectors and forecasters read its points from the store."""

    TOPIC: ClassVar[str] = "batch.stored"
    ID_PREFIX: ClassVar[str] = "batch"
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("agent", "batch_id")

    id: str
    agent: str
    batch_id: str  # "<boot_epoch>-<seq>", as the agent numbers its batches
    points: int
    max_ts_ms: int


@dataclass(frozen=True, slots=True)
class PointsPushed(_Message):
    """Points a source pushed (line protocol, remote write, metric webhooks) are durably stored; the hub's
    detector bank scores them (`hub.detect`). The one message that carries its points: pushed series have
    no edge detector, and reading them back from the store would race with the source's next write.

    Column-wise, so a push of thousands of points costs no Python object per point on the request path:
    `series` is a JSON array with one `[metric, [[label, value], ...]]` per series, `counts` how many of
    the points belong to each in turn, `ts_ms` and `values` the points (finite), series after series,
    kept as read-only numpy columns (JSON arrays on the wire). A batch is split into `part`s that each
    stay under `MAX_MESSAGE_BYTES`; the consumer checks that the columns agree. Equal when every field
    is (the columns compared element by element); hashed by id.
    """

    TOPIC: ClassVar[str] = "points.pushed"
    ID_PREFIX: ClassVar[str] = "pushed"
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("agent", "batch_id", "part")

    id: str
    agent: str  # "push:<key name>", the pushing credential's source
    batch_id: str
    part: int
    series: str
    counts: IntColumn
    ts_ms: IntColumn
    values: FloatColumn
    # The same series already parsed, never on the wire: the memory bus hands consumers this object, so
    # the scorer in the publishing process skips reading `series` back (a message from NATS has None).
    keys: tuple[SeriesKey, ...] | None = dataclasses.field(default=None, compare=False, metadata=_LOCAL)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PointsPushed):
            return NotImplemented
        return (self.id, self.agent, self.batch_id, self.part, self.series) == (
            other.id,
            other.agent,
            other.batch_id,
            other.part,
            other.series,
        ) and all(
            np.array_equal(a, b)
            for a, b in (
                (self.counts, other.counts),
                (self.ts_ms, other.ts_ms),
                (self.values, other.values),
            )
        )

    def __hash__(self) -> int:
        return hash(self.id)


@dataclass(frozen=True, slots=True)
class AnomalyReported(_Message):
    """A series started (`onset`) or stopped (`end`) being anomalous, as scored on the agent or hub."""

    TOPIC: ClassVar[str] = "anomaly.reported"
    ID_PREFIX: ClassVar[str] = "anomaly"
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("agent", "device", "metric", "labels", "ts_ms", "phase")

    id: str
    agent: str
    device: str
    metric: str
    labels: Labels
    ts_ms: int
    score: float
    severity: str
    phase: Phase
    value: float | None
    # The edge detector that raised it (the bank's rule label); "" from agents that do not say.
    detector: str = ""


@dataclass(frozen=True, slots=True)
class AnomalyVerdict(_Message):
    """The hub's second opinion on an edge onset (`hub.confirm`): the onset's fields, `verdict`
    (`confirmed`, `dismissed`, or `unscored` when the device has too little history for a model), the
    context model's score and the features that isolated the onset most, as (name, share) pairs."""

    TOPIC: ClassVar[str] = "anomaly.verdict"
    ID_PREFIX: ClassVar[str] = "verdict"
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("agent", "device", "metric", "labels", "ts_ms")

    id: str
    agent: str
    device: str
    metric: str
    labels: Labels
    ts_ms: int
    score: float
    severity: str
    value: float | None
    detector: str
    verdict: Verdict
    confirm_score: float
    top_features: Labels


@dataclass(frozen=True, slots=True)
class DeviceEvent(_Message):
    """Something a device said about itself: a trap, a syslog line, a Redfish event."""

    TOPIC: ClassVar[str] = "device.event"
    ID_PREFIX: ClassVar[str] = "event"
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("agent", "device", "kind", "source", "ts_ms")

    id: str
    agent: str
    device: str
    kind: str
    severity: str
    source: str
    message: str
    attributes: Labels
    ts_ms: int


@dataclass(frozen=True, slots=True)
class AgentSeen(_Message):
    """An agent's heartbeat with its health, for fleet views and agent-down alerts."""

    TOPIC: ClassVar[str] = "agent.seen"
    ID_PREFIX: ClassVar[str] = "seen"
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("agent", "ts_ms")

    id: str
    agent: str
    ts_ms: int
    heartbeat_s: float
    version: str
    spool_depth: int
    cert_expiry_ms: int
    targets_up: tuple[str, ...]
    targets_down: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LimitCrossed(_Message):
    """A series crossed (`onset`) or came back inside (`end`) a configured static limit."""

    TOPIC: ClassVar[str] = "limit.crossed"
    ID_PREFIX: ClassVar[str] = "limit"
    ID_FIELDS: ClassVar[tuple[str, ...]] = (
        "agent",
        "device",
        "metric",
        "labels",
        "limit_name",
        "ts_ms",
        "phase",
    )

    id: str
    agent: str
    device: str
    metric: str
    labels: Labels
    ts_ms: int
    value: float
    limit_name: str
    limit_value: float
    phase: Phase


@dataclass(frozen=True, slots=True)
class ForecastCrossing(_Message):
    """A series' forecast band crosses a threshold within the horizon (`onset`, repeated at every refit
    while it does) or has stopped doing so (`end`); the forecast that decided it travels along.

    Crossing times are epoch ms, 0 when beyond the horizon: `p10_ms` is the early (pessimistic) one.
    """

    TOPIC: ClassVar[str] = "forecast.crossing"
    ID_PREFIX: ClassVar[str] = "forecast"
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("agent", "device", "metric", "labels", "ts_ms", "phase")

    id: str
    agent: str
    device: str
    metric: str
    labels: Labels
    ts_ms: int
    value: float  # the last point the forecast started from
    threshold: float
    threshold_source: str
    direction: str
    p10_ms: int
    p50_ms: int
    p90_ms: int
    horizon_ms: int
    method: str
    backtest_mase: float
    phase: Phase


# Alerts per `AlertsChanged`: a step that changed more is announced in parts, each well under
# `MAX_MESSAGE_BYTES` even with 128-character source fingerprints.
ALERTS_PER_MESSAGE = 200


@dataclass(frozen=True, slots=True)
class AlertsChanged(_Message):
    """Alerts created or changed in one step of the alert path (firing, acknowledged, resolved, a
    repeat...), column-wise: alert `i` is `alert_ids[i]`, `fingerprints[i]` and so on.

    One message per step (a step of more than `ALERTS_PER_MESSAGE` alerts in parts) rather than one
    per alert: building those was an eighth of the alert path's CPU, and on NATS each was a round trip.
    `digest` is of the step's alert ids and changes, so the same step announced again has the same id.
    """

    TOPIC: ClassVar[str] = "alerts.changed"
    ID_PREFIX: ClassVar[str] = "alerts"
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("digest", "ts_ms")

    id: str
    digest: str
    alert_ids: tuple[str, ...]
    fingerprints: tuple[str, ...]
    statuses: tuple[str, ...]
    severities: tuple[str, ...]
    changes: tuple[str, ...]
    ts_ms: int

    def __post_init__(self) -> None:
        _Message.__post_init__(self)
        n = len(self.alert_ids)
        columns = (self.fingerprints, self.statuses, self.severities, self.changes)
        if not 1 <= n <= ALERTS_PER_MESSAGE or any(len(c) != n for c in columns):
            raise MessageError(
                self.TOPIC, f"1..{ALERTS_PER_MESSAGE} alerts, every column as long as alert_ids"
            )

    @classmethod
    def of(cls, alerts: Sequence[tuple[str, str, str, str, str]], ts_ms: int) -> list[AlertsChanged]:
        """The messages announcing `alerts` ((alert id, fingerprint, status, severity, change) each)."""
        out = []
        for i in range(0, len(alerts), ALERTS_PER_MESSAGE):
            part = alerts[i : i + ALERTS_PER_MESSAGE]
            ids, fps, statuses, severities, changes = (tuple(c) for c in zip(*part, strict=True))
            digest = hashlib.sha256("\x1f".join(ids + changes).encode()).hexdigest()[:24]
            out.append(
                cls.create(
                    digest=digest,
                    alert_ids=ids,
                    fingerprints=fps,
                    statuses=statuses,
                    severities=severities,
                    changes=changes,
                    ts_ms=ts_ms,
                )
            )
        return out


@dataclass(frozen=True, slots=True)
class IncidentChanged(_Message):
    """An incident (a group of alerts) was opened, grew, or was resolved."""

    TOPIC: ClassVar[str] = "incident.changed"
    ID_PREFIX: ClassVar[str] = "incident"
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("incident_id", "change", "ts_ms")

    id: str
    incident_id: str
    status: str
    change: str
    ts_ms: int


@dataclass(frozen=True, slots=True)
class IncidentEnriched(_Message):
    """An incident's LLM explanation was stored (`hub.enrich.llm`): `source` says whether the model
    answered (`llm`) or the deterministic summary stands in for an invalid answer (`fallback`). The text
    stays in the state database; a stream client reads it with the incident."""

    TOPIC: ClassVar[str] = "incident.enriched"
    ID_PREFIX: ClassVar[str] = "enriched"
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("incident_id", "prompt_sha256", "ts_ms")

    id: str
    incident_id: str
    model: str
    prompt_sha256: str
    source: Literal["llm", "fallback"]
    ts_ms: int


@dataclass(frozen=True, slots=True)
class AlertCommand(_Message):
    """An operator action an `api` process asks the alert engine (in the worker leading it) to run.

    `action` is one of `hub.alerts.commands.ACTIONS`; `target` the alert or incident id (empty for
    `signals` and `windows`); `payload` a JSON text the action reads (note text, assignee, signals).
    Ids are random (`new()`): two operators acting alike are two commands. The engine records each
    command's outcome in the state database once, which is what the api process waits for.
    """

    TOPIC: ClassVar[str] = "alert.command"
    ID_PREFIX: ClassVar[str] = "cmd"
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("action", "target", "actor", "ts_ms")

    id: str
    action: str
    target: str
    actor: str
    payload: str
    ts_ms: int

    @classmethod
    def new(cls, action: str, target: str, actor: str, payload: str, ts_ms: int) -> AlertCommand:
        """A command with a fresh random id (at most 64 characters, the outcome table's key)."""
        return cls(f"cmd:{secrets.token_hex(16)}", action, target, actor, payload, ts_ms)


Message = (
    BatchStored
    | AnomalyReported
    | AnomalyVerdict
    | DeviceEvent
    | AgentSeen
    | LimitCrossed
    | ForecastCrossing
    | AlertsChanged
    | IncidentChanged
    | IncidentEnriched
    | AlertCommand
    | PointsPushed
)

MESSAGES: dict[str, type[Message]] = {
    BatchStored.TOPIC: BatchStored,
    AnomalyReported.TOPIC: AnomalyReported,
    AnomalyVerdict.TOPIC: AnomalyVerdict,
    DeviceEvent.TOPIC: DeviceEvent,
    AgentSeen.TOPIC: AgentSeen,
    LimitCrossed.TOPIC: LimitCrossed,
    ForecastCrossing.TOPIC: ForecastCrossing,
    AlertsChanged.TOPIC: AlertsChanged,
    IncidentChanged.TOPIC: IncidentChanged,
    IncidentEnriched.TOPIC: IncidentEnriched,
    AlertCommand.TOPIC: AlertCommand,
    PointsPushed.TOPIC: PointsPushed,
}


def decode(topic: str, data: bytes) -> Message:
    """The message of `topic` encoded in `data`.

    Raises:
        UnknownTopic: `topic` is not in MESSAGES.
        MessageError: `data` is not a JSON object of exactly that message's valid fields.
    """
    cls = MESSAGES.get(topic)
    if cls is None:
        raise UnknownTopic(topic)
    if len(data) > MAX_MESSAGE_BYTES:
        raise MessageError(topic, f"{len(data)} bytes, more than {MAX_MESSAGE_BYTES}")
    try:
        obj = json.loads(data, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MessageError(topic, f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MessageError(topic, f"expected a JSON object, got {type(obj).__name__}")
    names = _SPECS[cls].keys()
    # A field added later with a default may be absent (a message from a hub one version older).
    missing, extra = sorted(names - obj.keys() - _DEFAULTED[cls]), sorted(obj.keys() - names)
    if missing or extra:
        raise MessageError(topic, f"missing fields {missing}, unexpected fields {extra}")
    return cls(**obj)


def topic_of(msg: Message) -> str:
    """The topic `msg` is published on."""
    return msg.TOPIC


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number the bus carries")


def _id_part(value: object) -> str:
    """One id component; ':' and '%' are escaped so two different sources never share an id."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and _UNQUOTED.fullmatch(value):
        return value  # what `quote` would leave as it is: most ids, at a tenth of its cost
    if isinstance(value, tuple):
        return ",".join(f"{_id_part(k)}={_id_part(v)}" for k, v in value)
    if isinstance(value, Mapping):
        return _id_part(tuple(sorted(value.items())))
    return quote(str(value), safe=_ID_SAFE)


# --- field checks, built once from the annotations -------------------------------------------------

Convert = Callable[[Any], Any]


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a string, got {type(v).__name__}")
    return v


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"expected an integer, got {type(v).__name__}")
    return v


def _float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"expected a number, got {type(v).__name__}")
    if not math.isfinite(v):
        raise ValueError(f"{v} is not finite")
    return v if type(v) is float else float(v)


def _optional_float(v: Any) -> float | None:
    return None if v is None else _float(v)


def _strings(v: Any) -> tuple[str, ...]:
    if not isinstance(v, tuple | list):
        raise TypeError(f"expected a list of strings, got {type(v).__name__}")
    for s in v:
        _str(s)
    return v if isinstance(v, tuple) else tuple(v)


def _labels(v: Any) -> Labels:
    """A label set in canonical form: pairs sorted by key, each key once."""
    if isinstance(v, Mapping):
        pairs = list(v.items())
    elif isinstance(v, tuple | list):
        pairs = []
        for p in v:
            if not isinstance(p, tuple | list) or len(p) != 2:
                raise TypeError("expected (name, value) pairs")
            pairs.append((p[0], p[1]))
    else:
        raise TypeError(f"expected an object of strings, got {type(v).__name__}")
    out = tuple(sorted((_str(k), _str(val)) for k, val in pairs))
    for a, b in zip(out, out[1:], strict=False):
        if a[0] == b[0]:
            raise ValueError(f"label {a[0]!r} given twice")
    return v if isinstance(v, tuple) and v == out else out


_INT_ONLY = {int}


def _int_column(v: Any) -> IntColumn:
    """A column of integers (a numpy integer array, or a list from the wire whose types are checked at C
    speed: a push can carry many thousand points) as a read-only int64 array of its own."""
    if isinstance(v, np.ndarray):
        if v.ndim != 1 or v.dtype.kind not in "iu":
            raise TypeError(f"expected a column of integers, got {v.ndim}-d {v.dtype}")
        return _frozen(np.array(v, dtype=np.int64))
    if not isinstance(v, tuple | list):
        raise TypeError(f"expected a list of integers, got {type(v).__name__}")
    if v and set(map(type, v)) != _INT_ONLY:
        raise TypeError("expected a list of integers")
    try:
        return _frozen(np.array(v, dtype=np.int64))
    except OverflowError:
        raise ValueError("integers must fit 64 bits") from None


def _finite_column(v: Any) -> FloatColumn:
    """A column of finite numbers (a numpy float array, or a list) as a read-only float64 array of its own."""
    if isinstance(v, np.ndarray):
        if v.ndim != 1 or v.dtype.kind != "f":
            raise TypeError(f"expected a column of numbers, got {v.ndim}-d {v.dtype}")
        column = np.array(v, dtype=np.float64)
    elif isinstance(v, tuple | list):
        column = np.array([_float(x) for x in v] if set(map(type, v)) - {float} else v, dtype=np.float64)
    else:
        raise TypeError(f"expected a list of numbers, got {type(v).__name__}")
    if not np.isfinite(column).all():
        raise ValueError("values must be finite")
    return _frozen(column)


def _frozen(column: np.ndarray) -> np.ndarray:
    """A column the message owns, made read-only: a message never changes, and the array it was built
    from may (a copy costs microseconds per part; sharing would tie the message to its source)."""
    column.flags.writeable = False
    return column


def _literal(allowed: tuple[str, ...]) -> Convert:
    def check(v: Any) -> str:
        if v not in allowed:
            raise ValueError(f"expected one of {list(allowed)}, got {v!r}")
        return str(v)

    return check


def _converter(hint: Any) -> Convert:
    if hint is str:
        return _str
    if hint is int:
        return _int
    if hint is float:
        return _float
    if hint == (float | None):
        return _optional_float
    if hint == tuple[str, ...]:
        return _strings
    if hint == Labels:
        return _labels
    if hint == IntColumn:
        return _int_column
    if hint == FloatColumn:
        return _finite_column
    if typing.get_origin(hint) is Literal:
        return _literal(typing.get_args(hint))
    raise TypeError(f"no bus converter for {hint!r}")  # a programming error, caught at import


def _spec(cls: type) -> dict[str, Convert]:
    """The wire fields of `cls` with their checks (in-process fields, `_LOCAL`, are neither)."""
    hints = typing.get_type_hints(cls)
    return {f.name: _converter(hints[f.name]) for f in dataclasses.fields(cls) if not f.metadata.get("local")}


_SPECS: dict[type, dict[str, Convert]] = {cls: _spec(cls) for cls in MESSAGES.values()}
# Per field: its check, and the one type whose values that check returns as they are (str, int), so
# the common case costs a type test instead of a call; floats always go through theirs (finite?).
_PLAIN: dict[Convert, type] = {_str: str, _int: int}
_CHECKS: dict[type, tuple[tuple[str, Convert, type | None], ...]] = {
    cls: tuple((name, convert, _PLAIN.get(convert)) for name, convert in spec.items())
    for cls, spec in _SPECS.items()
}
_DEFAULTED: dict[type, frozenset[str]] = {
    cls: frozenset(f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING)
    for cls in MESSAGES.values()
}
_LABEL_FIELDS: dict[type, frozenset[str]] = {
    cls: frozenset(n for n, c in spec.items() if c is _labels) for cls, spec in _SPECS.items()
}
