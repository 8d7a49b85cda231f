"""Decimal numbers read out of many byte spans of one buffer at once, exactly as `float()` reads them.

Each span is read as the 8-byte words that end it (one gather per word from an overlapping view of
the buffer, see `spans.words_view`), viewed as bytes for the classes of its bytes and read eight
digits at a time by three multiplications (the SWAR digit reader of simdjson and Lemire): per span,
not per byte (numpy's per-byte passes over 25,000 values cost more than the `float()` calls they
replace). A dot reads as a 0 digit, and is taken out again by arithmetic on the number.

For a plain decimal (`-?D*(.D*)?`) of at most 19 bytes whose digits make at most 2**53, mantissa and
10**fraction (at most 10**18; powers of ten are exact doubles up to 10**22) are both exact doubles, so
their one IEEE division is the correctly rounded value: what strtod and `float()` give (Clinger's fast
path). Integers of up to 19 digits are exact in uint64 and their cast to float64 is correctly rounded,
as `float()` of the text is. Anything else (an exponent, more digits) is the caller's to read another
way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hub.ingest.webhooks.lineprotocol.spans import U64Array, last_word
from shared.model import F64Array, I64Array

BoolArray = npt.NDArray[np.bool_]
MAX_DIGITS = 19  # 10**19 - 1 < 2**64: a span of up to 19 bytes is read exactly
MAX_WORDS = 3  # of a longer span only the last 24 bytes are counted
MAX_MANTISSA = 2**53  # every integer up to it is a double
_POW10 = np.array([10**k for k in range(MAX_DIGITS + 1)], dtype=np.uint64)
_POW10_F = np.array([10.0**k for k in range(MAX_DIGITS + 1)])  # exact up to 10**22
_U64 = np.uint64
_DOT = np.uint8(ord(".") - ord("0") + 256)  # a dot, less "0" as the digits are (wrapping)


@dataclass(frozen=True, slots=True)
class Digits:
    """Per span: its digits as one number (exact when the span has at most `MAX_DIGITS` bytes), how
    many digits and dots it has, and how many bytes follow its (first) dot."""

    mantissa: U64Array
    digits: I64Array
    dots: I64Array
    fraction: I64Array

    def plain(self, length: I64Array) -> BoolArray:
        """Which spans (of `length` bytes) read `D*(.D*)?` with at least one digit and are exact by
        `value`."""
        return (
            (self.digits + self.dots == length)
            & (self.dots <= 1)
            & (self.digits >= 1)
            & (length <= MAX_DIGITS)
            & (self.mantissa <= MAX_MANTISSA)
        )

    def value(self, signed: BoolArray) -> F64Array:
        """mantissa / 10**fraction, negated where `signed` (-0.0 for "-0"): `float()`'s value where
        `plain`, and for integers of at most `MAX_DIGITS` digits."""
        values = self.mantissa.astype(np.float64)
        values /= _POW10_F[np.minimum(self.fraction, MAX_DIGITS)]
        np.negative(values, out=values, where=signed)
        return values


def digits(words: U64Array, start: I64Array, end: I64Array) -> Digits:
    """The digits of the spans `[start, end)` of the text `words` views (`spans.words_view`), counted
    in their last `MAX_WORDS` words."""
    n = start.shape[0]
    length = end - start
    raw = np.zeros(n, dtype=np.uint64)  # the digits, a dot read as 0
    n_digits = np.zeros(n, dtype=np.int64)
    n_dots = np.zeros(n, dtype=np.int64)
    fraction = np.zeros(n, dtype=np.int64)
    for k in range(min(MAX_WORDS, -(-int(length.max(initial=0)) // 8))):
        at = np.flatnonzero(length > 8 * k) if k else np.arange(n)  # the spans that reach word k
        word = last_word(words, end[at], length[at], k) if k else last_word(words, end, length)
        byte = word.view(np.uint8) - np.uint8(ord("0"))
        is_digit = byte < 10
        raw[at] += _eight_digits((byte * is_digit).view(_U64)) * _POW10[8 * k]
        n_digits[at] += np.bitwise_count(is_digit.view(_U64))
        is_dot = (byte == _DOT).view(_U64)
        dotted = np.flatnonzero(is_dot)
        if dotted.shape[0]:
            lowest = is_dot[dotted] & (~is_dot[dotted] + _U64(1))
            # bytes after the dot: 7 less the index of its lowest byte in the word, and 8 per word after
            fraction[at[dotted]] = 8 * k + 7 - (np.bitwise_count(lowest - _U64(1)).astype(np.int64) >> 3)
            n_dots[at[dotted]] += np.bitwise_count(is_dot[dotted])
    dotted = np.flatnonzero(n_dots)
    scale = _POW10[np.minimum(fraction[dotted], MAX_DIGITS - 1)]
    raw[dotted] = raw[dotted] // (scale * _U64(10)) * scale + raw[dotted] % scale  # the dot's 0 taken out
    return Digits(raw, n_digits, n_dots, fraction)


def _eight_digits(word: U64Array) -> U64Array:
    """The number eight digit values (one per byte, the first in the lowest) spell, by three
    multiply-and-shifts over pairs, quads and halves."""
    word = (word * _U64(10 * 256 + 1)) >> _U64(8)
    word = ((word & _U64(0x00FF00FF00FF00FF)) * _U64(100 * 65536 + 1)) >> _U64(16)
    return ((word & _U64(0x0000FFFF0000FFFF)) * _U64(10000 * 2**32 + 1)) >> _U64(32)
