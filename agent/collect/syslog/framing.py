"""Splitting a syslog TCP (or TLS) byte stream into messages: octet counting or LF framing, per connection.

RFC 6587 knows two framings: octet counting (3.4.1, `MSG-LEN SP SYSLOG-MSG`, what RFC 5425 TLS mandates)
and non-transparent framing with a trailing LF (3.4.2, what most devices and `logger` send). As rsyslog
does, the first byte of a connection decides: a digit means octet counting, anything else (normally the
`<` of a PRI) LF framing. A message longer than the limit is cut there and the rest of it skipped, so a
connection never buffers more than `max_bytes` plus one read.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

_MAX_LEN_DIGITS = 10  # MSG-LEN is a NONZERO-DIGIT *DIGIT; ten digits already exceed any sane message


class Framing(Enum):
    OCTET_COUNTING = "octet-counting"
    LF = "lf"


@dataclass(frozen=True, slots=True)
class Frame:
    """One message's bytes (framing removed); `truncated` when the sender's was longer than the limit."""

    data: bytes
    truncated: bool = False


class Framer:
    """Incremental: `feed` the bytes as they arrive, get the complete messages; `close` at end of stream."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self.framing: Framing | None = None
        self._buf = bytearray()
        # Octet counting: reading MSG-LEN or a message body; the body's bytes to keep, then to discard.
        self._in_body = False
        self._keep = 0
        self._skip_after = 0
        self._skip = 0
        # Set when an octet-counted stream carried something other than `MSG-LEN SP`: it cannot be
        # resynchronised, so the caller closes the connection (the messages before it were returned).
        self.error: str | None = None
        self._skipping_line = False  # LF framing: discarding the rest of an over-long line

    def feed(self, data: bytes) -> list[Frame]:
        """Returns the messages completed by `data` (none once `error` is set)."""
        if self.error is not None:
            return []
        if self.framing is None and data:
            self.framing = Framing.OCTET_COUNTING if data[:1].isdigit() else Framing.LF
        if self.framing is Framing.LF:
            return self._feed_lf(data)
        return self._feed_counted(data)

    def close(self) -> Frame | None:
        """The last message of an LF-framed stream that ended without a final LF (as `logger` may send)."""
        if self.framing is Framing.LF and self._buf and not self._skipping_line:
            data, self._buf = bytes(self._buf), bytearray()
            return Frame(data)
        return None

    def _feed_lf(self, data: bytes) -> list[Frame]:
        out: list[Frame] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            if self._skipping_line:
                self._skipping_line = False
            else:
                self._buf += data[start:nl]
                if self._buf:
                    out.append(Frame(bytes(self._buf[: self._max]), truncated=len(self._buf) > self._max))
            self._buf = bytearray()
            start = nl + 1
        if not self._skipping_line:
            self._buf += data[start:]
            if len(self._buf) > self._max:
                out.append(Frame(bytes(self._buf[: self._max]), truncated=True))
                self._buf, self._skipping_line = bytearray(), True
        return out

    def _feed_counted(self, data: bytes) -> list[Frame]:
        out: list[Frame] = []
        view = memoryview(data)
        while view:
            if self._skip:
                n = min(self._skip, len(view))
                self._skip -= n
                view = view[n:]
                continue
            if not self._in_body:
                sp = bytes(view[: _MAX_LEN_DIGITS + 1 - len(self._buf)]).find(b" ")
                if sp < 0:
                    self._buf += view[: _MAX_LEN_DIGITS + 1 - len(self._buf)]
                    if len(self._buf) > _MAX_LEN_DIGITS or not self._buf.isdigit():
                        self.error = f"bad octet count {bytes(self._buf[:12])!r}"
                        return out
                    view = view[len(view) :]
                    continue
                digits = bytes(self._buf) + bytes(view[:sp])
                view = view[sp + 1 :]
                self._buf = bytearray()
                if not digits.isdigit() or digits.startswith(b"0"):
                    self.error = f"bad octet count {digits[:12]!r}"
                    return out
                length = int(digits)
                self._in_body, self._keep = True, min(length, self._max)
                self._skip_after = length - self._keep
                continue
            n = min(self._keep - len(self._buf), len(view))
            self._buf += view[:n]
            view = view[n:]
            if len(self._buf) == self._keep:
                out.append(Frame(bytes(self._buf), truncated=self._skip_after > 0))
                self._skip, self._buf, self._in_body = self._skip_after, bytearray(), False
        return out
