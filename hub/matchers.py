"""Label matchers in the Prometheus dialect, for series queries, alert routes, silences and maintenance.

`name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"` (quotes optional). Regexes are RE2 (`hub.regex`),
anchored at both ends and compiled once when the matcher is built, so no matcher from any API client can
take more than linear time, and none matches more than it says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

from hub.regex import MAX_PATTERN_LEN, Pattern, compile_anchored
from shared.model import SeriesKey

MAX_MATCHERS = 32
MAX_NAME_LEN = 256
# A matcher's whole text: the name, operator and quotes around a value or regex of the longest allowed.
MAX_MATCHER_LEN = MAX_NAME_LEN + MAX_PATTERN_LEN + 8
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*', re.DOTALL)

Labels = tuple[tuple[str, str], ...]


class MatchOp(Enum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """A label matcher in PromQL's dialect (`name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`).

    Regexes are RE2, anchored at both ends (`^(?:re)$`), and compiled once, here, not per series.
    A missing label has the value "" (so `rack=~"x?"` matches series without `rack`).

    Raises:
        ValueError: the name or value is too long, or the regex is not valid RE2 (the message says why).
    """

    name: str
    op: MatchOp
    value: str
    _rx: Pattern | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > MAX_NAME_LEN:
            raise ValueError(f"label name must be 1 to {MAX_NAME_LEN} characters")
        if self.op in (MatchOp.RE, MatchOp.NRE):
            object.__setattr__(self, "_rx", compile_anchored(self.value))
        elif len(self.value) > 4 * MAX_NAME_LEN:
            raise ValueError(f"label value longer than {4 * MAX_NAME_LEN} characters")

    def matches(self, key: SeriesKey) -> bool:
        return self.matches_value(key.label(self.name))

    def matches_labels(self, labels: Labels) -> bool:
        """The same test on a plain label tuple (an alert's labels)."""
        return self.matches_value(next((v for k, v in labels if k == self.name), ""))

    def matches_value(self, actual: str) -> bool:
        if self._rx is None:
            return (actual == self.value) is (self.op is MatchOp.EQ)
        hit = self._rx.fullmatch(actual) is not None
        return hit if self.op is MatchOp.RE else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op.value}"{self.value}"'


def all_match(matchers: tuple[Matcher, ...], labels: Labels) -> bool:
    return all(m.matches_labels(labels) for m in matchers)


def parse_matchers(raw: list[str] | None) -> tuple[Matcher, ...]:
    """Parses `name=value`, `name!=value`, `name=~regex`, `name!~regex` (quotes optional).

    Regexes are RE2, anchored (`^(?:re)$`) and compiled here, once per request.

    Raises:
        ValueError: too many matchers, one too long, malformed, or a regex RE2 rejects (with its reason).
    """
    texts = raw or []
    if len(texts) > MAX_MATCHERS:
        raise ValueError(f"at most {MAX_MATCHERS} matchers, got {len(texts)}")
    out = []
    for text in texts:
        if len(text) > MAX_MATCHER_LEN:
            raise ValueError(f"matcher longer than {MAX_MATCHER_LEN} characters")
        m = _MATCHER.fullmatch(text)
        if not m:
            raise ValueError(f"bad matcher {text!r}: expected name=value, name!=value, name=~re or name!~re")
        try:
            out.append(Matcher(m.group(1), MatchOp(m.group(2)), m.group(3)))
        except ValueError as exc:
            raise ValueError(f"bad matcher {text!r}: {exc}") from None
    return tuple(out)
