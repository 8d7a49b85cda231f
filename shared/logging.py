"""One log format for both processes: time, level, logger, message, on stderr."""

from __future__ import annotations

import logging
import sys


def setup(level: str = "info") -> None:
    """Configures the root logger once; library chatter below WARNING is silenced."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "asyncio", "grpc", "urllib3", "pysnmp", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
