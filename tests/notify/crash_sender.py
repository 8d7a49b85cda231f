"""A hub stand-in for the crash test: queues N notifications to a webhook, then runs until killed.

    python -m tests.notify.crash_sender DB_URL WEBHOOK_URL OWNER COUNT
Prints "queued" once every notification is in the outbox.
"""

from __future__ import annotations

import asyncio
import sys

import sqlalchemy as sa

from hub.notify.config import NotifyConfig
from hub.notify.dispatcher import Dispatcher
from tests.notify.conftest import note


async def main(state_url: str, url: str, owner: str, count: int) -> None:
    engine = sa.create_engine(state_url)
    cfg = NotifyConfig.model_validate(
        {
            "receivers": [{"kind": "webhook", "name": "pager", "url": url, "timeout_s": 60}],
            "poll_interval_s": 0.1,
        }
    )
    d = Dispatcher(engine, cfg, owner=owner)
    await d.start()
    for i in range(count):
        d.submit(note(i, group=f"g{i}"))
    while d.queued:
        await asyncio.sleep(0.01)
    print("queued", flush=True)
    await asyncio.Event().wait()  # until SIGKILL: no aclose, leases stay behind


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
