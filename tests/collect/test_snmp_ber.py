"""ber.py against pysnmp's own codec: what pyasn1 encodes, ber.py decodes to the same values, and the
requests ber.py encodes are messages pyasn1 reads back unchanged."""

from __future__ import annotations

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.proto.api import v2c

from agent.collect.snmp import ber
from agent.collect.snmp.errors import SnmpProtocolError

pytestmark = pytest.mark.unit

OID = (1, 3, 6, 1, 4, 1, 2636, 3, 1, 13, 1, 8, 9, 1, 0, 0)


def response(binds: list[tuple[tuple[int, ...], object]], request_id: int = 4242, status: int = 0) -> bytes:
    pdu = v2c.ResponsePDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, request_id)
    v2c.apiPDU.set_error_status(pdu, status)
    v2c.apiPDU.set_error_index(pdu, 1 if status else 0)
    v2c.apiPDU.set_varbinds(pdu, binds)
    msg = v2c.Message()
    v2c.apiMessage.set_defaults(msg)
    v2c.apiMessage.set_community(msg, "public")
    v2c.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


@pytest.mark.parametrize(
    ("value", "expected", "bits"),
    [
        (rfc1902.Integer32(-2147483648), -2147483648, 0),
        (rfc1902.Integer32(0), 0, 0),
        (rfc1902.Gauge32(4294967295), 4294967295, 0),
        (rfc1902.TimeTicks(4294967295), 4294967295, 0),
        (rfc1902.Unsigned32(128), 128, 0),
        (rfc1902.Counter32(4294967295), 4294967295, 32),
        (rfc1902.Counter64(18446744073709551615), 18446744073709551615, 64),
        (rfc1902.OctetString(b"ge-0/0/1\x00"), "ge-0/0/1", 0),
        (rfc1902.OctetString(b"\xff\xfe"), "\ufffd\ufffd", 0),
        (rfc1902.IpAddress("10.1.2.3"), "10.1.2.3", 0),
        (rfc1902.ObjectIdentifier((1, 3, 6, 1, 4, 1, 9, 1, 617)), "1.3.6.1.4.1.9.1.617", 0),
        (rfc1902.Opaque(b"abc"), "abc", 0),
    ],
)
def test_each_value_type_decodes_as_pysnmp_encoded_it(value: object, expected: object, bits: int) -> None:
    decoded = ber.decode_response(response([(OID, value)]))
    assert decoded.items == [(OID, ber.VarBind(OID, expected, bits), False)]


def test_exceptions_and_null_carry_no_value_and_only_exceptions_end_a_column() -> None:
    binds = [
        (OID, rfc1905.noSuchObject),
        ((1, 3, 6, 1, 2, 1, 1, 1, 0), rfc1905.noSuchInstance),
        ((2, 999, 1), rfc1905.endOfMibView),
        ((0, 0), v2c.null),
    ]
    decoded = ber.decode_response(response(binds, request_id=2**31 - 1, status=2))
    assert (decoded.request_id, decoded.error_status, decoded.error_index) == (2**31 - 1, 2, 1)
    assert decoded.items == [
        (OID, None, True),
        ((1, 3, 6, 1, 2, 1, 1, 1, 0), None, True),
        ((2, 999, 1), None, True),
        ((0, 0), None, False),
    ]


@pytest.mark.parametrize(("pdu", "a", "b"), [(ber.GET, 0, 0), (ber.GETNEXT, 0, 0), (ber.GETBULK, 0, 50)])
def test_a_request_is_a_message_pyasn1_reads_back(pdu: int, a: int, b: int) -> None:
    oids = [OID, (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1_000_000_000), (2, 100, 3)]
    raw = ber.encode_request(1, b"s3cret-community", pdu, 123_456_789, a, b, oids)
    msg, rest = decoder.decode(raw, asn1Spec=v2c.Message())
    assert rest == b""
    assert bytes(msg["community"]) == b"s3cret-community" and int(msg["version"]) == 1
    body = msg["data"].getComponent()
    assert int(body["request-id"]) == 123_456_789
    assert [tuple(vb["name"]) for vb in body["variable-bindings"]] == oids
    assert (int(body[1]), int(body[2])) == (a, b)


@pytest.mark.parametrize(
    "junk",
    [b"", b"\x30", b"\x30\x05\x02\x01\x01", b"\x04\x03abc", response([(OID, rfc1902.Integer32(1))])[:-3]],
)
def test_a_malformed_datagram_is_a_protocol_error_not_a_crash(junk: bytes) -> None:
    with pytest.raises(SnmpProtocolError):
        ber.decode_response(junk)
