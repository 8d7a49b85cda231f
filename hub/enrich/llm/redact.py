"""Redaction of text before it leaves the hub for an LLM: addresses, names, serials, credentials.

Each pattern runs through `hub.regex` (RE2, linear time), so an operator's extra pattern cannot stall the
hub. Order matters: credentials and emails go before hostnames, or a JWT's dotted parts read as an FQDN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hub.regex import Substituter, compile_search

# (placeholder, pattern): the placeholder says what was there, so the model still reads the sentence.
BUILTIN: tuple[tuple[str, str], ...] = (
    ("<jwt>", r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"),
    ("<token>", r"(?i)\b(?:bearer|token|api[_-]?key|secret|password|passwd)\s*[:=]?\s*[^\s,;\"']+"),
    ("<key>", r"\b(?:sk|pk|ghp|xox[abp])[-_][A-Za-z0-9_-]{16,}"),
    ("<email>", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    ("<mac>", r"\b[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}\b"),
    ("<ipv6>", r"(?i)\b(?:[0-9a-f]{1,4}:){2,7}[0-9a-f]{0,4}(?:::?[0-9a-f]{1,4})*\b"),
    ("<ipv4>", r"\b(?:\d{1,3}\.){3}\d{1,3}\b"),
    ("<serial>", r"(?i)\b(?:serial|s/n|sn)\s*[:=#]?\s*[A-Z0-9-]{5,}"),
    ("<host>", r"(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\b"),
)


@dataclass(frozen=True, slots=True)
class Redactor:
    """Replaces every match of its patterns; built once from config, safe to share across threads."""

    rules: tuple[tuple[str, Substituter], ...]

    @classmethod
    def build(cls, extra: Sequence[str] = ()) -> Redactor:
        """The built-in patterns followed by the operator's `extra` ones (each replaced by `<redacted>`).

        Raises:
            hub.regex.RegexError: an extra pattern is too long or not valid RE2.
        """
        patterns = [*BUILTIN, *(("<redacted>", p) for p in extra)]
        return cls(tuple((mark, compile_search(p)) for mark, p in patterns))

    def __call__(self, text: str) -> str:
        for mark, pattern in self.rules:
            text = pattern.sub(mark, text)
        return text
