"""How secrets the hub hands out are made and stored: random, prefixed by kind, kept only as a SHA-256."""

from __future__ import annotations

import hashlib
import secrets

API_KEY_PREFIX = "opk_"
REFRESH_PREFIX = "opr_"


def new_secret(prefix: str) -> str:
    """256 random bits, URL-safe, with a prefix saying what it is (so a leaked one is recognisable)."""
    return prefix + secrets.token_urlsafe(32)


def new_id() -> str:
    """Public ids of users, keys and sessions: 128 random bits, hex."""
    return secrets.token_hex(16)


def hash_secret(secret: str) -> str:
    """How API keys, refresh and enrollment tokens are stored: only their SHA-256.

    Their 256 random bits make a slow hash pointless, and the lookup is by the hash on a unique index, so
    timing reveals nothing about the secret itself.
    """
    return hashlib.sha256(secret.encode()).hexdigest()
