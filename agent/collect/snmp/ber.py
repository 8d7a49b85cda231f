"""BER for SNMPv1/v2c community messages: encodes GET/GETNEXT/GETBULK requests, decodes responses.

Why not pysnmp's codec for these: a poll of a 36k-sample wireless controller spent more than half of the
collector's CPU in pyasn1 building, cloning and tag-matching objects for every variable it decoded. A
community message is a fixed shape (RFC 1157, RFC 3416: version, community, one PDU of request-id,
two integers and a list of OID/value pairs), so it is read here straight from the bytes into the
agent's own values. SNMPv3 (USM security, engine discovery) stays with pysnmp in session.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.collect.snmp.errors import SnmpProtocolError

Oid = tuple[int, ...]
Value = int | float | str

GET, GETNEXT, RESPONSE, GETBULK = 0xA0, 0xA1, 0xA2, 0xA5
_SEQUENCE, _INTEGER, _OCTETS, _NULL, _OID = 0x30, 0x02, 0x04, 0x05, 0x06
_IPADDRESS, _COUNTER32, _GAUGE32, _TIMETICKS, _OPAQUE, _COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
# noSuchObject, noSuchInstance, endOfMibView (RFC 3416 exceptions): the variable has no value.
_END_TAGS = frozenset((0x80, 0x81, 0x82))
_UNSIGNED = frozenset((_GAUGE32, _TIMETICKS))


@dataclass(frozen=True, slots=True)
class VarBind:
    """One decoded variable: `counter_bits` is 32 or 64 for counters, 0 for everything else."""

    oid: Oid
    value: Value
    counter_bits: int = 0


# A decoded variable as the session walks it: its OID, its value (None for NULL and for the exceptions)
# and whether it was an exception (noSuchObject/noSuchInstance/endOfMibView).
Item = tuple[Oid, VarBind | None, bool]


@dataclass(frozen=True, slots=True)
class Response:
    request_id: int
    error_status: int
    error_index: int
    items: list[Item]


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _length(len(body)) + body


def _integer(n: int) -> bytes:
    return _tlv(_INTEGER, n.to_bytes(n.bit_length() // 8 + 1, "big", signed=True))


def _subid(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def encode_oid(oid: Oid) -> bytes:
    """The OID's BER body (first two arcs combined as 40 x a + b)."""
    first = 40 * oid[0] + (oid[1] if len(oid) > 1 else 0)
    return b"".join(_subid(n) for n in (first, *oid[2:]))


def encode_request(
    version: int, community: bytes, pdu: int, request_id: int, a: int, b: int, oids: Sequence[Oid]
) -> bytes:
    """A request message. `a`, `b` are error-status/error-index (0, 0) or, for GETBULK,
    non-repeaters/max-repetitions. `version` is 0 for v1, 1 for v2c."""
    binds = b"".join(_tlv(_SEQUENCE, _tlv(_OID, encode_oid(o)) + b"\x05\x00") for o in oids)
    body = _integer(request_id) + _integer(a) + _integer(b) + _tlv(_SEQUENCE, binds)
    return _tlv(_SEQUENCE, _integer(version) + _tlv(_OCTETS, community) + _tlv(pdu, body))


def decode_oid(data: bytes, start: int, end: int) -> Oid:
    arcs: list[int] = []
    n = 0
    for i in range(start, end):
        byte = data[i]
        n = (n << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(n)
            n = 0
    if not arcs:
        raise ValueError("empty OID")
    first = arcs[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    return (*head, *arcs[1:])


def _header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the TLV at `pos`."""
    tag = data[pos]
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        width = n & 0x7F
        if not 0 < width <= 4:
            raise ValueError(f"length of {width} bytes")
        n = int.from_bytes(data[pos : pos + width], "big")
        pos += width
    end = pos + n
    if end > len(data):
        raise ValueError("truncated")
    return tag, pos, end


def _int_at(data: bytes, pos: int) -> tuple[int, int]:
    tag, start, end = _header(data, pos)
    if tag != _INTEGER:
        raise ValueError(f"expected INTEGER, got tag 0x{tag:02x}")
    return int.from_bytes(data[start:end], "big", signed=True), end


def _value(oid: Oid, tag: int, raw: bytes) -> VarBind | None:
    if tag == _INTEGER:
        return VarBind(oid, int.from_bytes(raw, "big", signed=True))
    if tag == _OCTETS or tag == _OPAQUE:
        return VarBind(oid, raw.decode("utf-8", errors="replace").rstrip("\x00"))
    if tag == _COUNTER64:
        return VarBind(oid, int.from_bytes(raw, "big"), 64)
    if tag == _COUNTER32:
        return VarBind(oid, int.from_bytes(raw, "big"), 32)
    if tag in _UNSIGNED:
        return VarBind(oid, int.from_bytes(raw, "big"))
    if tag == _OID:
        return VarBind(oid, ".".join(map(str, decode_oid(raw, 0, len(raw)))))
    if tag == _IPADDRESS:
        return VarBind(oid, ".".join(str(b) for b in raw))
    if tag == _NULL:
        return None
    return VarBind(oid, raw.hex())


def decode_response(data: bytes) -> Response:
    """A Response-PDU message, its variables decoded.

    Raises:
        SnmpProtocolError: the datagram is not a well-formed v1/v2c response.
    """
    try:
        tag, pos, end = _header(data, 0)
        if tag != _SEQUENCE:
            raise ValueError("not a SEQUENCE")
        _, pos = _int_at(data, pos)  # version
        tag, start, pos = _header(data, pos)  # community
        tag, pos, pdu_end = _header(data, pos)
        if tag != RESPONSE:
            raise ValueError(f"PDU tag 0x{tag:02x} is not a response")
        request_id, pos = _int_at(data, pos)
        status, pos = _int_at(data, pos)
        index, pos = _int_at(data, pos)
        tag, pos, list_end = _header(data, pos)
        items: list[Item] = []
        while pos < list_end:
            _, pos, bind_end = _header(data, pos)
            tag, start, pos = _header(data, pos)
            if tag != _OID:
                raise ValueError("variable name is not an OID")
            oid = decode_oid(data, start, pos)
            tag, start, pos = _header(data, pos)
            if tag in _END_TAGS:
                items.append((oid, None, True))
            else:
                items.append((oid, _value(oid, tag, data[start:pos]), False))
            pos = bind_end
        return Response(request_id, status, index, items)
    except (ValueError, IndexError) as exc:
        raise SnmpProtocolError("?", f"undecodable response: {exc}") from None
