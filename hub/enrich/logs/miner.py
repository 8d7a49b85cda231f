"""Online log template miner (Drain-style fixed-depth grouping with generic variable masking).

Lines are masked (numbers with units, hex, IPs, paths, URLs, key=value values but words; runs of parameters
become one wildcard, so lists of any length keep one template), tokenized on whitespace, grouped by
token count and first two tokens, then matched to the most similar template of that group. A match above
``sim_threshold`` generalizes the template (differing tokens become ``<*>``) and keeps its id, so callers
can store ids; a few differences always open another template (a flag flipped, a value left empty).
Ids are a short hash of the template text at creation and are never reused.
A line that differs from one seen before only in masked digits goes straight to its template by its digit
shape; other lines are masked token by token through a map of tokens seen before, and a masked line seen
before goes straight to its template, so the common line takes no regex scan at all (faster than Drain3,
which masks nothing).
Thread-safe: one lock guards all state.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from operator import itemgetter
from typing import NamedTuple

WILDCARD = "<*>"
SNAPSHOT_VERSION = 1
# Distinct masked lines remembered, and the longest remembered: at most ~10 MB of keys.
SEEN_LIMIT = 20_000
SEEN_MAX_CHARS = 512

# A unit word that joins the number before it ("12 KB", "<1 sec").
_UNIT = r"(?:ms|sec|secs|seconds?|min|mins|minutes?|hours?|days?|[KMGT]i?B)\b"
# One alternation, scanned once per line (the first alternative matching at the leftmost place wins): the
# order matters where two could start at the same character. Each alternative but key=value starts with
# the character it consumes first and looks behind it after ("\b" before a word character is "not a word
# character one back"): the engine then skips an alternative on the first character alone (~25% faster).
_MASK = re.compile(
    "|".join(
        f"(?:{p})"
        for p in (
            r'"[^"]*"',  # quoted strings, spaces and all
            # key=value: the value (the key is the constant part), up to a closing bracket, unless it is a
            # word ("force=false", "user=root"): a word value is a state that names the event
            r"(?<=[\w.\-]=)(?![A-Za-z_]+(?![^\s,;)\]}]))[^\s,;)\]}]+",
            # ids "blk_-42", "task_1_m_3" (before hex: it takes the digits)
            r"[A-Za-z](?<!\w[A-Za-z])[A-Za-z]*_-?\d\w*",
            # URLs (scheme tried once a word)
            r"[a-zA-Z](?<![a-zA-Z0-9+.-][a-zA-Z])[a-zA-Z0-9+.-]*://\S+",
            r"\d(?<!\w\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?::\d+)?\b",  # IPv4[:port]
            r"[0-9a-fA-F](?<!\w[0-9a-fA-F])[0-9a-fA-F]:(?:[0-9a-fA-F]{2}:){4}[0-9a-fA-F]{2}\b",  # MAC
            r"0(?<!\w0)x[0-9a-fA-F]+\b",  # hex literal
            r"[0-9a-fA-F](?<!\w[0-9a-fA-F])[0-9a-fA-F]{7,}\b",  # long hex ids
            # shorter lower-case hex ids of a digit and a letter at least ("d1c8e63", Java object hashes)
            r"\d(?<!\w\d)(?=[0-9a-f]*[a-f])[0-9a-f]{5,}\b",
            r"[a-f](?<!\w[a-f])(?=[0-9a-f]*\d)[0-9a-f]{5,}\b",
            r"/(?<![\w/]/)[\w.\-]+(?:/[\w.\-]+)+/?",  # paths
            # numbers, with a unit glued on or as the next word ("35ms", "<1 sec", "12 KB"), not right
            # after a letter
            r"(?:[-+<>~](?<![A-Za-z][-+<>~])\d+|\d(?<![A-Za-z]\d)\d*)(?:\.\d+)?(?:[a-zA-Z%]{1,3})?\b"
            rf"(?: {_UNIT})?",
        )
    )
)
# Parameters of unbounded length must not change the token count (grouping is by count first): a number's
# unit word joins it, a parenthesized quantity after a value ("1190 bytes (1.16 KB)") is dropped, and a
# run of wildcards (a list of ids, "<*>:<*>", "<*> <*>") becomes one.
# (The "(" comes before its look-behind so that the scan jumps from one "(<*>" to the next.)
_ANNOTATION = re.compile(r"\((?<!\S\()<\*>(?: [A-Za-z%]{1,3})?\)(?!\S)")
_RUN = re.compile(r"<\*>(?:[\s:.,-]*<\*>)+")


# Every mask but two stays inside one whitespace token, and its look-arounds see only that token's
# characters or the space before it, so masking token by token (each distinct token once, then a dict
# lookup) gives the line scan's result. The two that span tokens: a quoted string (such lines take the
# line scan) and a number's unit word, so a token led by a unit word is scanned with the one before it.
_UNIT_LED = re.compile(_UNIT)
_UNIT_FIRST = frozenset("msdhKMGT")  # the letters a unit word starts with: most tokens skip the regex
# Distinct raw tokens remembered with their masked form, and the longest remembered (~20 MB at most):
# long enough for Java frames ("com.android.server.wm.WindowManagerService.removeWindowInnerLocked:2739")
# and comma-joined key=value lists.
TOKEN_CACHE_LIMIT = 50_000
TOKEN_CACHE_MAX_CHARS = 256
_HEX_LETTERS = "abcdefABCDEF"  # a word of only these, 8 or more, is a hex id


def _collapse(masked: str) -> str:
    """Drop parenthesized quantities and fold wildcard runs, the two rules that look across tokens."""
    if "(<*>" in masked:
        masked = _ANNOTATION.sub("", masked)
    return _RUN.sub(WILDCARD, masked) if masked.count(WILDCARD) > 1 else masked  # a run takes two


# What some mask alternative needs in a token: a digit, a quote, "=", "/" (paths, URLs), five colons (a MAC)
# or eight hex letters in a row. A token without them is its own mask ("failed:", "double-hummer"), and a
# host name without them and a port ("www.google.com:443") masks only the port. Most tokens seen for the
# first time are new host names, so they take one match instead of the scan (~4x cheaper); a token with a
# digit elsewhere fails the match at that digit.
_SCAN_FREE = re.compile(r'([^\d"=/:]*)(?::([0-9]+)|(?::[^\d"=/:]*){0,4})')
_HEX_RUN = re.compile("[a-fA-F]{8}")


def _mask_unscanned(token: str) -> str | None:
    """``_MASK.sub(WILDCARD, token)`` for a token of the two kinds above, else None."""
    m = _SCAN_FREE.fullmatch(token)
    if m is None or _HEX_RUN.search(token):
        return None
    return token if m[2] is None else f"{m[1]}:{WILDCARD}"


# A line's (or token's) digit shape: every ASCII digit made "1", and "0x" made one 0xff byte (which UTF-8
# never holds), because no mask tells digits apart except the "0x" of a hex literal. Two lines of one shape
# have the same masked spans, so when one's mask keeps no digit, the other's mask is the same text.
_ALL_DIGITS = bytes.maketrans(b"0123456789", b"1111111111")
_ANY_DIGIT = re.compile(r"[0-9]")
_SPACES = re.compile(r"\s+")  # the runs str.split() splits at


def _digit_shape(content: str) -> bytes:
    return content.encode().replace(b"0x", b"\xff").translate(_ALL_DIGITS)


class _TokenMasker:
    """Masks a line token by token through a bounded raw-token -> masked-token map.

    A line's tokens mostly repeat (constants, small numbers, hosts), so the common line costs a split,
    a dict lookup per token and a join instead of a regex scan of the whole line; a token seen for the
    first time is scanned once per digit shape. Not thread-safe: the miner calls it under its lock.
    """

    __slots__ = ("_cache", "_digits", "_led", "_shapes", "_unsure")

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}
        self._led: set[str] = set()  # the cached tokens led by a unit word
        self._digits: set[str] = set()  # the cached tokens whose mask keeps a digit
        self._shapes: dict[bytes, str] = {}  # digit shape -> masked text, "" when the shape cannot tell
        # Set while masking a line when one of its tokens may be unit-led without being in _led (a long
        # unit-led one, or one cached before a clear).
        self._unsure = False

    def mask(self, content: str, raw: list[str]) -> str:
        """``content`` (whose whitespace tokens are ``raw``) masked but not yet collapsed.

        ``_collapse`` of it equals the line scan ``_collapse(_MASK.sub(WILDCARD, content))`` up to
        whitespace, so it can key a seen-line map and the collapse can wait for a miss.
        """
        self._unsure = False
        get = self._cache.get
        out = [get(t) or self._miss(t) for t in raw]
        if '"' in content:
            return _MASK.sub(WILDCARD, content)
        if self._unsure:
            joins = [i for i in range(1, len(raw)) if self._is_led(raw[i])]
        elif self._led.isdisjoint(raw):
            return " ".join(out)
        else:
            led = self._led
            joins = [i for i in range(1, len(raw)) if raw[i] in led]
        # A unit-led token exactly one space after the token before it (the unit alternative wants one
        # space) is masked together with that token, as one key of the map ("(1.16 KB)"); a key with a
        # space never equals a token.
        if joins and " ".join(raw) != content:
            spaces = _SPACES.findall(content.strip())
            joins = [i for i in joins if spaces[i - 1] == " "]
        k = len(joins) - 1
        while k >= 0:  # from the right, so that the positions left of a joined group stay put
            end = start = joins[k]
            while k and joins[k - 1] == start - 1:  # a chain of unit-led tokens is one group
                k -= 1
                start -= 1
            group = " ".join(raw[start - 1 : end + 1])
            out[start - 1 : end + 1] = [get(group) or self._miss(group)]
            k -= 1
        return " ".join(out)

    def _is_led(self, token: str) -> bool:
        if token in self._cache:
            return token in self._led
        return _UNIT_LED.match(token) is not None

    def _mask_token(self, token: str) -> tuple[str, bool]:
        """``_MASK.sub(WILDCARD, token)`` and whether it keeps a digit, answered without a scan for whole
        numbers and plain words, and once per digit shape for the rest ("(18.4 KB)" and "(29.7 KB)")."""
        if token.isascii():
            if token.isdigit():
                return WILDCARD, False
            if token.isalpha():
                # a word is masked only as a long hex id ("deadbeefcafe")
                return (WILDCARD if len(token) >= 8 and not token.strip(_HEX_LETTERS) else token), False
        if len(token) > TOKEN_CACHE_MAX_CHARS:
            return _MASK.sub(WILDCARD, token), False  # not cached, so whether it keeps a digit never matters
        shape = _digit_shape(token)
        known = self._shapes.get(shape)
        if known is None:
            masked = _mask_unscanned(token)
            if masked is None:
                masked = _MASK.sub(WILDCARD, token)
            if len(self._shapes) >= TOKEN_CACHE_LIMIT:
                self._shapes.clear()
            # "" when a digit stays: then the shape does not tell the masked text
            known = self._shapes[shape] = "" if _ANY_DIGIT.search(masked) else masked
            return masked, not known
        if known:
            return known, False
        return _MASK.sub(WILDCARD, token), True

    def _miss(self, token: str) -> str:
        masked, keeps_digit = self._mask_token(token)
        if len(token) > TOKEN_CACHE_MAX_CHARS:
            if token[0] in _UNIT_FIRST and _UNIT_LED.match(token):
                self._unsure = True
            return masked
        if len(self._cache) >= TOKEN_CACHE_LIMIT:
            self._cache.clear()
            self._led.clear()
            self._digits.clear()
            self._unsure = True
        self._cache[token] = masked
        if token[0] in _UNIT_FIRST and _UNIT_LED.match(token):
            self._led.add(token)
        if keeps_digit:
            self._digits.add(token)
        return masked

    def kept_digits(self, raw: list[str]) -> tuple[int, ...] | None:
        """Positions of the tokens whose mask keeps a digit ("alt0", "tcpconn6.qq.com:<*>"), or None when
        one of them is not in the map (so it cannot tell). A token's mask keeps the digits it keeps in
        the line's (a unit word joining it only widens a number's mask over letters)."""
        if not all(map(self._cache.__contains__, raw)):
            return None
        digits = self._digits
        return tuple([i for i, t in enumerate(raw) if t in digits])


def _tokens(masked: str) -> list[str]:
    # A token keeps its constant part around a wildcard ("uid=<*>", "ret:<*>,"): that part tells templates
    # apart, and a whole token of parameters was already masked to one wildcard.
    return masked.split()


_Key = tuple[int, str, str]
_DIGIT = re.compile(r"\d")


def _key(tokens: list[str]) -> _Key:
    """Token count and the first two tokens (one with a wildcard or digit counts as any), as Drain's depth 4.

    Lines of a key share these tokens, so a template's key follows from its tokens (restore() relies on it).
    Events of one source often differ only there ("Failed password ..." / "Failed none ...", "Link ok").
    """
    first, second = (tokens + [WILDCARD, WILDCARD])[:2]
    return (len(tokens), _prefix(first), _prefix(second))


def _prefix(token: str) -> str:
    return WILDCARD if WILDCARD in token or _DIGIT.search(token) else token


# A device name: a word and one digit ("eth0", "sda1", "alt0"); the masks keep it, as a constant. Devices of
# two kinds ("ee0" / "alt0") name two events; two of one kind ("eth0" / "eth3") are one event's parameter.
_DEVICE = re.compile(r"[A-Za-z]{2,}\d")


# Words of a state and its opposite: "Link up" and "Link down" are two events, whatever else they share.
_OPPOSITE = {
    w: o
    for a, b in (("begin", "end"), ("up", "down"), ("on", "off"), ("start", "stop"), ("open", "close"))
    for w, o in ((a, b), (b, a), (a.capitalize(), b.capitalize()), (b.capitalize(), a.capitalize()))
}


_PUNCTUATION = ".,;:!?)]}'\""


_ENUM_VALUE = re.compile(r"([\w.\-\[\]]+=)[A-Z][A-Z0-9_]*\W*")  # a key and an upper-case word value


# A pure test, asked again for the same pair by every line of two templates' key; 1024 pairs of tokens of a
# line (4 KB at most) keep it under ~8 MB.
@lru_cache(maxsize=1024)
def _names_another_event(a: str, b: str) -> bool:
    """Whether a template's constant token ``a`` and a line's differing token ``b`` tell two events apart,
    however many other constants match: a value left empty ("rhost=" / "rhost=<*>"), a parameter's frame
    with a constant glued on ("(uid=<*>)" / "LOGIN(uid=<*>)"), another kind of device ("ee0" / "alt0"),
    the opposite state ("up" / "down"), another upper-case value of one key ("action=ACTION_UP" /
    "action=ACTION_DOWN"), another case ("ICONS*" / "icons*") or number ("failure;" / "failures;"), or a
    flipped flag ("ret:true" / "ret:false"). Loghub's templates tell all of these apart; a lower-case word
    value ("user=root" / "user=git") may be a name, so it is left to the similarity.
    """
    if a.replace(WILDCARD, "") == b or b.replace(WILDCARD, "") == a:
        return True
    if WILDCARD in a and WILDCARD in b and b != WILDCARD and (a.endswith(b) or b.endswith(a)):
        return True
    if (_DEVICE.fullmatch(a) and _DEVICE.fullmatch(b) and a[:-1] != b[:-1]) or _OPPOSITE.get(a) == b:
        return True
    if a.lower() == b.lower():
        return True
    ka, kb = _ENUM_VALUE.fullmatch(a), _ENUM_VALUE.fullmatch(b)
    if ka and kb and ka[1] == kb[1]:
        return True
    if abs(len(a) - len(b)) == 1:
        wa, wb = a.rstrip(_PUNCTUATION), b.rstrip(_PUNCTUATION)
        if a[len(wa) :] == b[len(wb) :] and (wa + "s" == wb or wb + "s" == wa):
            return True
    return a.replace("true", "false") == b.replace("true", "false")


@dataclass(frozen=True, slots=True)
class MinerConfig:
    """Bounds and matching threshold; one configuration is meant for all log sources."""

    # Share of a template's constant tokens a line must repeat. Chosen once on Loghub-2k's 8 systems: the mean
    # is flat from 0.73 to 0.75 (3 of 4 constants still match) and falls off on both sides.
    sim_threshold: float = 0.74
    max_templates: int = 10_000
    max_line_length: int = 4096


class MinedLine(NamedTuple):
    """One line's result (a tuple: built once per line, the cheapest immutable record)."""

    template_id: str
    template: str
    params: tuple[str, ...]
    is_new: bool


# Builds a MinedLine from one tuple without NamedTuple's __new__, a Python function (half a hit's build).
_mined_line: Callable[[tuple[str, str, tuple[str, ...], bool]], MinedLine] = partial(tuple.__new__, MinedLine)


@dataclass(frozen=True, slots=True)
class Template:
    template_id: str
    template: str
    count: int


@dataclass(slots=True)
class _Cluster:
    template_id: str
    tokens: list[str]
    key: _Key
    count: int = 0
    text: str = ""  # " ".join(tokens), kept in step with them by set_tokens
    consts: int = 0  # how many tokens are not wildcards, likewise
    # The constant tokens with their positions, which the similarity visits: built by its first call after
    # set_tokens (most templates of a source are never compared again once made).
    const_at: list[tuple[int, str]] | None = None
    # Picks the raw tokens at the wildcards, likewise (an itemgetter is ~3x a comprehension).
    _pick: Callable[[list[str]], tuple[str, ...] | str] | None = None

    def __post_init__(self) -> None:
        self.set_tokens(self.tokens)

    def set_tokens(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.text = " ".join(tokens)
        wild = [i for i, t in enumerate(tokens) if t == WILDCARD]
        self.consts = len(tokens) - len(wild)
        self.const_at = None
        self._pick = itemgetter(*wild) if wild else None

    def params(self, raw: list[str]) -> tuple[str, ...]:
        """Raw tokens at the wildcard positions (best effort: whitespace tokens of the unmasked line)."""
        if self._pick is None or len(raw) != len(self.tokens):
            return ()
        picked = self._pick(raw)
        return picked if isinstance(picked, tuple) else (picked,)


@dataclass
class MinerCounters:
    """Reach /metrics through the enrich stage; plain ints read under the miner's lock."""

    lines: int = 0
    truncated_lines: int = 0
    templates_evicted: int = 0


class TemplateMiner:
    """Groups log lines into templates one line at a time."""

    def __init__(self, config: MinerConfig | None = None) -> None:
        self.config = config or MinerConfig()
        self.counters = MinerCounters()
        self._lock = threading.Lock()
        self._groups: dict[_Key, list[_Cluster]] = {}
        self._by_id: dict[str, _Cluster] = {}
        self._used_ids: set[str] = set()
        # Masked line -> the template it went to. A masked text seen before has every constant of that
        # template (templates only ever gain wildcards), so the search and the generalization are skipped.
        # Bounded; cleared when a template is dropped, so it never points at an evicted one.
        self._seen: dict[str, _Cluster] = {}
        # Digit shape of a raw line -> the positions of its tokens whose mask keeps a digit, and per text
        # of those tokens, the template. Most lines of a source differ from one seen before only in digits
        # that are masked away (ids, counts, addresses); they then take a translate and a lookup or two
        # instead of a lookup per token. Bounded (SEEN_LIMIT lines) and cleared like _seen.
        self._by_shape: dict[bytes, tuple[tuple[int, ...], dict[tuple[str, ...], _Cluster]]] = {}
        self._by_shape_size = 0
        self._masker = _TokenMasker()

    def add(self, content: str) -> MinedLine:
        with self._lock:
            self.counters.lines += 1
            if len(content) > self.config.max_line_length:
                content = content[: self.config.max_line_length]
                self.counters.truncated_lines += 1
            raw = content.split()
            shape = _digit_shape(content)
            known = self._by_shape.get(shape)
            if known is not None:
                kept, clusters = known
                seen = clusters.get(tuple([raw[i] for i in kept]) if kept else ())
                if seen is not None:
                    seen.count += 1
                    return _mined_line((seen.template_id, seen.text, seen.params(raw), False))
            masked = self._masker.mask(content, raw)
            seen = self._seen.get(masked)
            if seen is not None:
                seen.count += 1
                self._remember_shape(shape, content, raw, masked, seen)
                return _mined_line((seen.template_id, seen.text, seen.params(raw), False))
            tokens = _tokens(_collapse(masked))
            key = _key(tokens)
            group = self._groups.setdefault(key, [])
            best, best_sim = None, -1.0
            for c in group:
                sim = self._similarity(c, tokens)
                if sim > best_sim:
                    best, best_sim = c, sim
                    if sim == 1.0:
                        break  # no later template can beat it (the first of equals wins)
            is_new = best is None or best_sim < self.config.sim_threshold
            if is_new:
                best = self._create(key, tokens)
            else:
                assert best is not None
                if best_sim < 1.0:  # else every constant matched: nothing to generalize
                    pairs = zip(best.tokens, tokens, strict=True)
                    best.set_tokens([a if a == b else WILDCARD for a, b in pairs])
            best.count += 1
            if len(masked) <= SEEN_MAX_CHARS:
                if len(self._seen) >= SEEN_LIMIT:
                    self._seen.clear()
                self._seen[masked] = best
            self._remember_shape(shape, content, raw, masked, best)
            return _mined_line((best.template_id, best.text, best.params(raw), is_new))

    def _remember_shape(
        self, shape: bytes, content: str, raw: list[str], masked: str, cluster: _Cluster
    ) -> None:
        """Lines of this shape whose tokens that keep digits are these ones mask to ``masked``: the rest of
        their digits is masked away at the same places."""
        if len(shape) > SEEN_MAX_CHARS:
            return
        if _ANY_DIGIT.search(masked) is None:
            kept: tuple[int, ...] | None = ()
        elif '"' in content:
            return  # a quoted string's mask spans tokens, so the tokens' masks do not tell
        else:
            kept = self._masker.kept_digits(raw)
        known = self._by_shape.get(shape)
        if known is None:
            if kept is None:
                return
            if self._by_shape_size >= SEEN_LIMIT:
                self._by_shape.clear()
                self._by_shape_size = 0
            known = self._by_shape[shape] = (kept, {})
        elif known[0] != kept:
            return
        clusters, at = known[1], tuple([raw[i] for i in known[0]])
        if at not in clusters:
            self._by_shape_size += 1
        clusters[at] = cluster

    @staticmethod
    def _similarity(cluster: _Cluster, tokens: list[str]) -> float:
        consts = cluster.consts
        if not consts:
            return 1.0  # an all-parameter (or empty) template takes any line of its key
        const_at = cluster.const_at
        if const_at is None:
            const_at = cluster.const_at = [(i, t) for i, t in enumerate(cluster.tokens) if t != WILDCARD]
        same = 0
        for i, a in const_at:
            b = tokens[i]
            if a == b:
                same += 1
            elif _names_another_event(a, b):
                return 0.0
        return same / consts

    def _create(self, key: _Key, tokens: list[str]) -> _Cluster:
        if len(self._by_id) >= self.config.max_templates:
            victim = min(self._by_id.values(), key=lambda c: c.count)
            self._drop(victim)
        text = " ".join(tokens)
        n = 0
        while True:
            tid = hashlib.sha1(f"{text}\x00{n}".encode()).hexdigest()[:12]
            if tid not in self._used_ids:
                break
            n += 1
        cluster = _Cluster(tid, list(tokens), key)
        self._used_ids.add(tid)
        self._by_id[tid] = cluster
        self._groups.setdefault(key, []).append(cluster)
        return cluster

    def _drop(self, victim: _Cluster) -> None:
        self.counters.templates_evicted += 1
        self._seen.clear()
        self._by_shape.clear()
        self._by_shape_size = 0
        del self._by_id[victim.template_id]
        self._groups[victim.key].remove(victim)

    def templates(self) -> list[Template]:
        with self._lock:
            return [Template(c.template_id, c.text, c.count) for c in self._by_id.values()]

    def snapshot(self) -> bytes:
        """Versioned JSON (never pickle: snapshots may be read back from shared storage)."""
        with self._lock:
            data = {
                "version": SNAPSHOT_VERSION,
                "config": {
                    "sim_threshold": self.config.sim_threshold,
                    "max_templates": self.config.max_templates,
                    "max_line_length": self.config.max_line_length,
                },
                "used_ids": sorted(self._used_ids),
                "templates": [
                    {"id": c.template_id, "tokens": c.tokens, "key": list(c.key), "count": c.count}
                    for c in self._by_id.values()
                ],
            }
        return json.dumps(data).encode()

    @classmethod
    def restore(cls, data: bytes) -> TemplateMiner:
        doc = json.loads(data)
        if doc.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported miner snapshot version {doc.get('version')!r}")
        miner = cls(MinerConfig(**doc["config"]))
        miner._used_ids = set(doc["used_ids"])
        for t in doc["templates"]:
            key = _key(t["tokens"])
            cluster = _Cluster(t["id"], list(t["tokens"]), key, int(t["count"]))
            miner._by_id[cluster.template_id] = cluster
            miner._groups.setdefault(key, []).append(cluster)
        return miner
