"""Alertmanager-style label matchers for routes, silences and maintenance windows.

The syntax is the one NOC engineers already write in Alertmanager: `name="value"`, `name!="value"`,
`name=~"regex"`, `name!~"regex"` (quotes optional). Regexes are RE2 and fully anchored, so a silence
created over the API can neither hang the engine nor match more than it says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

from hub.alerts.model import Labels
from hub.store.regex import Pattern, RegexError, compile_anchored

_SYNTAX = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*$')
MAX_MATCHERS = 32
MAX_MATCHER_LEN = 1100


class MatcherError(ValueError):
    """Raised when a matcher does not parse, or its regex is too long or not RE2; the message says why."""


class Op(Enum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    """One matcher; `matches` treats a missing label as the empty string, as Alertmanager does."""

    name: str
    op: Op
    value: str
    _rx: Pattern | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, name: str, op: Op, value: str) -> LabelMatcher:
        try:
            rx = compile_anchored(value) if op in (Op.RE, Op.NRE) else None
        except RegexError as exc:
            raise MatcherError(f"{name}{op.value}{value!r}: {exc}") from None
        return cls(name, op, value, rx)

    def matches(self, labels: Labels) -> bool:
        actual = next((v for k, v in labels if k == self.name), "")
        if self.op is Op.EQ:
            return actual == self.value
        if self.op is Op.NE:
            return actual != self.value
        assert self._rx is not None
        hit = self._rx.fullmatch(actual) is not None
        return hit if self.op is Op.RE else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op.value}"{self.value}"'


def parse_matcher(text: str) -> LabelMatcher:
    """Parses one matcher. Raises MatcherError with the offending text."""
    if len(text) > MAX_MATCHER_LEN:
        raise MatcherError(f"matcher longer than {MAX_MATCHER_LEN} characters")
    m = _SYNTAX.match(text)
    if not m:
        raise MatcherError(f"bad matcher {text[:80]!r}: expected name=\"value\", name!=, name=~ or name!~")
    value = m.group(3) if m.group(3) is not None else m.group(4)
    return LabelMatcher.of(m.group(1), Op(m.group(2)), value.replace('\\"', '"'))


def parse_matchers(texts: list[str] | tuple[str, ...]) -> tuple[LabelMatcher, ...]:
    """Parses a matcher list (all must match). Raises MatcherError; more than MAX_MATCHERS is an error."""
    if len(texts) > MAX_MATCHERS:
        raise MatcherError(f"at most {MAX_MATCHERS} matchers")
    return tuple(parse_matcher(t) for t in texts)


def all_match(matchers: tuple[LabelMatcher, ...], labels: Labels) -> bool:
    return all(m.matches(labels) for m in matchers)
