"""Offline embedders for semantic search of log templates and incidents.

The default is a hashing embedder: feature hashing of words and character n-grams into a fixed number of
dimensions, L2-normalized. It needs no model, no download and no network, is deterministic across
processes (blake2b, not Python's salted `hash`), and matches the vocabulary NOC engineers share with
log lines. A small curated ops vocabulary adds the usual synonyms ("disk full" ~ "no space left"), so a
query and a template meet even without common words; it is domain knowledge, not fitted to a query set.
camelCase identifiers count as their words (isBatteryLow: is, battery, low) and English function words
("by", "for", "the") are left out, so they do not make unrelated lines look alike; both general text
handling, not fitted to bench/search.py's queries.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import Protocol

_WORD = re.compile(r"[a-z][a-z0-9]+")
# Loghub-style parameter slots and numbers carry no meaning for search.
_SLOT = re.compile(r"<\*>|\b\d+\b")
# Identifiers in log lines join words in camelCase (isBatteryLow, allocateBlock): each part is a word.
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
# English function words: with the weight of a content word they would match "Connection closed by <*>" to
# any query with "by" in it. The usual list's short words, nothing about logs.
STOPWORDS = frozenset(
    "a an and are as at be been but by for from has have in into is it its no not of on or that the "
    "their there this to was were which will with".split()
)

# Groups of words an operator uses interchangeably; each word also counts as its group's name.
OPS_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("disk", "space", "storage", "filesystem", "volume", "partition", "full"),
    ("fail", "failed", "failure", "error", "errors", "fault", "faulty", "unable", "cannot", "denied"),
    ("login", "logon", "auth", "authentication", "password", "credentials", "sshd", "ssh", "session"),
    ("user", "account", "username", "uid"),
    ("connection", "connect", "connected", "socket", "link", "network", "tcp"),
    ("closed", "close", "disconnect", "disconnected", "reset", "lost", "down", "terminated"),
    ("timeout", "timed", "expired", "slow", "latency"),
    ("memory", "ram", "oom", "heap", "alloc", "allocate", "allocation"),
    ("cpu", "processor", "core", "cores", "load"),
    ("temperature", "temp", "thermal", "overheat", "hot", "fan"),
    ("power", "psu", "voltage", "battery"),
    ("start", "started", "starting", "boot", "booting", "startup", "initializing", "init"),
    ("stop", "stopped", "stopping", "shutdown", "halt", "kill", "killed", "exit", "exited"),
    ("restart", "restarted", "reboot", "rebooted", "respawn"),
    ("block", "blocks", "replica", "chunk", "datanode"),
    ("kernel", "panic", "interrupt", "crash", "crashed", "core", "dump"),
    ("job", "task", "tasks", "container", "application", "app"),
    ("delete", "deleted", "remove", "removed", "purge"),
    ("receive", "received", "receiving", "recv", "got"),
    ("send", "sent", "sending", "transmit", "served"),
    ("file", "files", "path", "directory", "dir"),
    ("dns", "resolve", "lookup", "hostname", "address"),
    ("permission", "permissions", "forbidden", "unauthorized", "root", "sudo"),
    ("invalid", "illegal", "bad", "unknown", "unrecognized", "malformed", "corrupt", "corrupted"),
    ("packet", "packets", "drop", "dropped", "discard"),
    ("warning", "warn", "critical", "alert", "severe"),
)
_GROUP: dict[str, str] = {w: f"~{group[0]}" for group in OPS_SYNONYMS for w in group}


class Embedder(Protocol):
    """Turns texts into unit vectors of `dim` dimensions; safe to call from several threads at once."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def _bucket(feature: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, (1.0 if value >> 63 else -1.0)


def _stem(word: str) -> str:
    """A light suffix strip so "connections" meets "connection"; no dictionary needed."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


class HashingEmbedder:
    """Feature-hashed words (weight 1), their synonym group (0.7) and char 3-grams (0.3 spread).

    Stateless apart from its constants, so one instance serves every thread.
    """

    name = "hashing"

    def __init__(self, dim: int = 1024) -> None:
        self.dim = dim

    def features(self, text: str) -> dict[str, float]:
        plain = _SLOT.sub(" ", _CAMEL.sub(" ", text)).lower()
        words = [w for w in _WORD.findall(plain) if w not in STOPWORDS]
        out: dict[str, float] = {}
        for word in words:
            stem = _stem(word)
            out[f"w:{stem}"] = out.get(f"w:{stem}", 0.0) + 1.0
            group = _GROUP.get(word) or _GROUP.get(stem)
            if group:
                out[group] = out.get(group, 0.0) + 0.7
            padded = f" {stem} "
            grams = [padded[i : i + 3] for i in range(len(padded) - 2)]
            for gram in grams:
                out[f"c:{gram}"] = out.get(f"c:{gram}", 0.0) + 0.3 / max(1, len(grams))
        return out

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            vec = [0.0] * self.dim
            for feature, weight in self.features(text).items():
                index, sign = _bucket(feature, self.dim)
                vec[index] += sign * weight
            norm = math.sqrt(sum(v * v for v in vec))
            # An empty text (only numbers or slots) keeps one fixed non-zero vector: cosine needs a norm.
            vectors.append([v / norm for v in vec] if norm else [1.0] + [0.0] * (self.dim - 1))
        return vectors


EMBEDDERS = {"hashing": HashingEmbedder}
