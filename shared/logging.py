"""One log format for both processes (time, level, logger, message on stderr), and the log-once rule."""

from __future__ import annotations

import logging
import sys

from shared.clock import Clock, SystemClock


def setup(level: str = "info") -> None:
    """Configures the root logger once; library chatter below WARNING is silenced."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "asyncio", "grpc", "urllib3", "pysnmp", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def human_duration(seconds: float) -> str:
    """`4m10s`, `2h3m0s`, `12s`: how long something was down, for one log line."""
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    if h:
        return f"{h}h{m}m{s}s"
    return f"{m}m{s}s" if m else f"{s}s"


class UpDown:
    """Logs a dependency going down and coming back, once each: "hub down: ..." then "hub back after 4m10s".

    Every failure in between is the caller's counter to bump, never another log line, so an outage of a
    day is two lines however many retries it took (Home Assistant's log-when-unavailable rule).
    """

    def __init__(
        self, logger: logging.Logger, what: str, clock: Clock | None = None, *, up: bool = True
    ) -> None:
        self._log = logger
        self._what = what
        self._clock = clock or SystemClock()
        self._up = up
        self._down_since: float | None = None if up else self._clock.monotonic()

    @property
    def is_up(self) -> bool:
        return self._up

    def down(self, reason: str, level: int = logging.WARNING, *, exc_info: bool = False) -> bool:
        """Marks it down; logs (reason cut to 300 chars, with the traceback if `exc_info`) and returns True
        only when it was up."""
        if not self._up:
            return False
        self._up, self._down_since = False, self._clock.monotonic()
        self._log.log(level, "%s down: %s", self._what, reason[:300], exc_info=exc_info)
        return True

    def up(self) -> bool:
        """Marks it up; logs how long it was down and returns True only when it was down."""
        if self._up:
            return False
        now = self._clock.monotonic()
        down_for = now - (now if self._down_since is None else self._down_since)
        self._up, self._down_since = True, None
        self._log.info("%s back after %s", self._what, human_duration(down_for))
        return True
