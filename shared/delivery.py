"""The delivery contract agent and hub both hold: how long a batch may be replayed, and so remembered.

An agent keeps an unacknowledged batch in its spool for at most `spool.max_age_s` and may re-send it any
time until then; the hub recognises a re-sent batch by its id (agent, boot_epoch, seq) only while it
still remembers that id. So one number binds three places, and each is validated against it:

- the agent's `spool.max_age_s` must be `<= DEDUP_WINDOW_S` (else it replays batches the hub forgot,
  and they are stored and counted twice);
- the hub store's `dedup_window` (embedded and InfluxDB ledgers) must be `>= DEDUP_WINDOW_S`;
- the hub state's seen-batch table (`hub/fleet/models.py`) keeps ids for `DEDUP_WINDOW_S`.
"""

from __future__ import annotations

DEDUP_WINDOW_S = 72 * 3600
DEDUP_WINDOW_MS = DEDUP_WINDOW_S * 1000


def describe_window() -> str:
    """The window in words, for config error messages (`259200 s (72 h)`)."""
    return f"{DEDUP_WINDOW_S} s ({DEDUP_WINDOW_S // 3600} h)"
