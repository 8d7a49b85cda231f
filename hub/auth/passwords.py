"""Password hashing with argon2id (argon2-cffi), at OWASP's minimum cost (19 MiB, 2 passes, 1 lane).

Hashing runs on a small pool of its own: each verify takes ~20-40 ms of a core and 19 MiB, so logins can
neither starve the API's other threads nor take unbounded memory, whatever the rate limits let through.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LEN = 10
# argon2 hashes any length, but a megabyte password is only a way to burn CPU: bounded.
MAX_PASSWORD_LEN = 256
HASH_THREADS = 2

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified when the user does not exist, so that answer takes as long as a wrong password.
_DUMMY = _HASHER.hash("not a real password, only for timing")


class WeakPassword(ValueError):
    """Raised when a new password is shorter than MIN_PASSWORD_LEN or longer than MAX_PASSWORD_LEN."""


def check_policy(password: str) -> None:
    """Raises WeakPassword when `password` may not be set."""
    if not MIN_PASSWORD_LEN <= len(password) <= MAX_PASSWORD_LEN:
        raise WeakPassword(f"a password has {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters")


def hash_password(password: str) -> str:
    check_policy(password)
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches `stored`; `stored=None` (no such user) costs the same and is False."""
    if len(password) > MAX_PASSWORD_LEN:
        return False
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when `stored` was made with other parameters than today's (it is re-hashed at the next login)."""
    return _HASHER.check_needs_rehash(stored)


class PasswordPool:
    """The bounded pool argon2 work runs on."""

    def __init__(self, threads: int = HASH_THREADS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, hash_password, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(self._pool, verify_password, stored, password)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
