"""From a parsed syslog message to the LogRecord that travels: its time, and which device sent it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

from agent.collect.syslog.parse import SyslogMessage
from shared.model import LogRecord


def device_addresses(devices: Iterable[object]) -> dict[str, str]:
    """Sender address -> device name: an SNMP device's `address`, a Redfish device's `url` host.

    An address that more than one device uses maps to none of them (naming one would be a guess).
    Addresses are compared literally, as the trap receiver does: a device configured by host name is not
    resolved, so its lines carry the name they give themselves.
    """
    names: dict[str, list[str]] = {}
    for d in devices:
        name, address, url = getattr(d, "name", None), getattr(d, "address", None), getattr(d, "url", None)
        if not isinstance(address, str) and isinstance(url, str):
            address = urlsplit(url).hostname
        if isinstance(address, str) and isinstance(name, str):
            names.setdefault(address.strip(), []).append(name)
    return {address: found[0] for address, found in names.items() if len(found) == 1}


_MONTHS = {m: i for i, m in enumerate(("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec").split(), 1)}
_HALF_YEAR_MS = 183 * 86_400_000


def timestamp_ms(msg: SyslogMessage, received_ms: int) -> int:
    """When the sender says the message happened; the receive time when it did not say or said nonsense.

    RFC 3164 stamps carry neither year nor zone: they are read as UTC in the year that puts them closest to
    the receive time (a December line received in January belongs to last year).
    """
    ts = msg.timestamp
    if not ts:
        return received_ms
    try:
        if msg.rfc == "5424":
            parsed = datetime.fromisoformat(ts)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return int(parsed.timestamp() * 1000)
        return _bsd_ms(ts, received_ms)
    except (ValueError, KeyError, OverflowError, OSError):  # Feb 29 in a common year, year 0, ...
        return received_ms


def _bsd_ms(ts: str, received_ms: int) -> int:
    """`Mmm dd hh:mm:ss` (the parser's grammar guarantees the shape) in the year closest to `received_ms`.

    Hand-split rather than strptime, which took 70 % of a line's receive cost (locale lookups per call).
    """
    month, day, clock = ts.split()
    hh, mm, ss = clock.split(":")
    fields = (_MONTHS[month], int(day), int(hh), int(mm), int(ss))
    year = datetime.fromtimestamp(received_ms / 1000, UTC).year
    stamp = int(datetime(year, *fields, tzinfo=UTC).timestamp() * 1000)
    if stamp - received_ms > _HALF_YEAR_MS:
        year -= 1
    elif received_ms - stamp > _HALF_YEAR_MS:
        year += 1
    else:
        return stamp
    return int(datetime(year, *fields, tzinfo=UTC).timestamp() * 1000)


def to_record(msg: SyslogMessage, received_ms: int, source: str, devices: Mapping[str, str]) -> LogRecord:
    """The record for `msg` received from address `source`.

    `device` is the configured device for that address, else the host the message names, else the address.
    One leading space of the text is dropped: rsyslog relaying a BSD line as RFC 5424 keeps the space that
    followed `tag:`, so the same line would otherwise differ by where it came through.
    """
    return LogRecord(
        ts_ms=timestamp_ms(msg, received_ms),
        received_ms=received_ms,
        message=msg.message.removeprefix(" "),
        facility=msg.facility,
        severity=msg.severity,
        host=msg.host,
        app=msg.app,
        procid=msg.procid,
        msgid=msg.msgid,
        device=devices.get(source) or msg.host or source,
        structured_data=msg.structured_data,
    )
