"""Syslog message parsing: RFC 5424 first, RFC 3164 (BSD) as the fallback, never an exception.

Devices send both formats (and many send neither exactly), so a line that matches no grammar is
still kept as a record: its whole text is the message, with the RFC 3164 default priority (13,
user.notice). Parsing is pure and shares no state, so it is safe in several threads at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DEFAULT_PRI = 13  # RFC 3164 4.3.3: user-level, notice, when a relay sees no PRI
_NIL = "-"
_PRI = re.compile(r"^<(\d{1,3})>")
_R5424 = re.compile(
    r"^1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) (?P<rest>.*)$", re.S
)
_R3164 = re.compile(
    r"^(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
    r"(?P<tag>[^:\[\s]{1,48})(?:\[(?P<pid>[^\]]*)\])?:? ?(?P<msg>.*)$",
    re.S,
)


@dataclass(frozen=True, slots=True)
class SyslogMessage:
    """One parsed line; empty strings stand for fields the sender left out (or NIL `-`)."""

    facility: int
    severity: int
    timestamp: str
    host: str
    app: str
    procid: str
    msgid: str
    structured_data: str
    message: str
    rfc: str  # "5424", "3164" or "" when no grammar matched


def _nil(value: str) -> str:
    return "" if value == _NIL else value


def _split_sd(rest: str) -> tuple[str, str]:
    """Structured data is `-` or one or more `[...]` elements (with `\\]` escapes); then the message."""
    if rest.startswith(_NIL):
        return "", rest[2:] if rest.startswith("- ") else rest[1:]
    i, escaped, depth = 0, False, 0
    while i < len(rest):
        c = rest[i]
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0 and not rest.startswith("[", i + 1):
                return rest[: i + 1], rest[i + 2 :]
        elif depth == 0:
            break
        i += 1
    return "", rest


def parse(line: str) -> SyslogMessage:
    """Parse one syslog message (framing already removed); a BOM before the message is dropped."""
    line = line.rstrip("\r\n")
    pri, body = _DEFAULT_PRI, line
    m = _PRI.match(line)
    if m and int(m.group(1)) <= 191:
        pri, body = int(m.group(1)), line[m.end() :]
    facility, severity = divmod(pri, 8)
    if (r := _R5424.match(body)) is not None:
        sd, msg = _split_sd(r["rest"])
        return SyslogMessage(
            facility, severity, _nil(r["ts"]), _nil(r["host"]), _nil(r["app"]), _nil(r["procid"]),
            _nil(r["msgid"]), sd, msg.removeprefix("\ufeff"), "5424",
        )  # fmt: skip
    if (b := _R3164.match(body)) is not None:
        return SyslogMessage(
            facility, severity, b["ts"], b["host"], b["tag"], b["pid"] or "", "", "", b["msg"], "3164"
        )
    return SyslogMessage(facility, severity, "", "", "", "", "", "", body, "")
