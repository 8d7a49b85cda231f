"""Label-matcher regexes for `hub.matchers`: RE2 (linear time), fully anchored. The only importer of re2.

Why RE2: a backtracking engine (Python's `re`) takes exponential time on patterns such as `(.*.*)*X`, and
one such matcher from any API client froze the hub for minutes. RE2 matches in time linear in the input
and rejects what it cannot do that way (lookarounds, backreferences) with a reason, which the API
returns as a 400.
"""

from __future__ import annotations

from typing import Protocol

import re2  # type: ignore[import-untyped]  # ships no type information

# Longest pattern accepted; RE2's own memory budget bounds the compiled program beyond that.
MAX_PATTERN_LEN = 1024

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a rejected pattern is the client's error, answered as a 400, not logged


class Pattern(Protocol):
    def fullmatch(self, text: str) -> object | None: ...


class RegexError(ValueError):
    """Raised when a matcher's pattern is too long or not valid RE2 syntax; the message says why."""


def compile_anchored(pattern: str) -> Pattern:
    """Compiles `^(?:pattern)$` with RE2: the whole label value must match, as in PromQL.

    Raises:
        RegexError: the pattern is longer than `MAX_PATTERN_LEN` or RE2 rejects it.
    """
    if len(pattern) > MAX_PATTERN_LEN:
        raise RegexError(f"regex longer than {MAX_PATTERN_LEN} characters")
    try:
        # Alone first: a pattern such as `a)|(b` would otherwise escape the anchoring group.
        re2.compile(pattern, _OPTIONS)
        compiled: Pattern = re2.compile(f"^(?:{pattern})$", _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise RegexError(f"not a valid RE2 regex: {reason}") from None
    return compiled


class Substituter(Protocol):
    def sub(self, repl: str, text: str) -> str: ...


def compile_search(pattern: str) -> Substituter:
    """Compiles an unanchored RE2 pattern for search-and-replace (redaction), with the same bounds.

    Raises:
        RegexError: the pattern is longer than `MAX_PATTERN_LEN` or RE2 rejects it.
    """
    if len(pattern) > MAX_PATTERN_LEN:
        raise RegexError(f"regex longer than {MAX_PATTERN_LEN} characters")
    try:
        compiled: Substituter = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise RegexError(f"not a valid RE2 regex: {reason}") from None
    return compiled
