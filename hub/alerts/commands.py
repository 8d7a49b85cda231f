"""Operator actions from an `api` process: published as `AlertCommand`, run by the alert engine's leader.

The engine keeps alert state in memory in exactly one worker (the one holding the alerts lock), so an
api process cannot change an alert itself. It publishes a command (`CommandClient`), the leader runs it
(`CommandExecutor`) through the same `AlertService` methods role `all` calls directly, and records the
outcome in `alert_commands` in the same database the api reads; the api waits for that row (bounded)
and answers with what the database now says. A command redelivered (the leader died after running it)
finds its row and is not run twice.

Silences and maintenance windows are different: the api writes them to the database itself and only
tells the engine to reload them (action `windows`), so creating or deleting one never waits on a worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from hub.alerts.command_models import alert_commands
from hub.alerts.model import Signal
from hub.alerts.service import AlertService, NotFound
from hub.bus.base import Bus
from hub.bus.messages import MAX_MESSAGE_BYTES, AlertCommand, Message
from hub.db.sql import insert_ignore
from shared.clock import Clock

log = logging.getLogger(__name__)

ALERT_ACTIONS = ("ack", "unack", "resolve")
INCIDENT_ACTIONS = ("incident_note", "incident_assign", "incident_ack", "incident_unack")
ACTIONS = (*ALERT_ACTIONS, *INCIDENT_ACTIONS, "signals", "windows")
# How long an api request waits for the engine to have run its command before answering 202.
WAIT_S = 5.0
_POLL_S = 0.05
# Signals per command stay well under the bus's message limit (the rest of the message is small).
_SIGNALS_BYTES = MAX_MESSAGE_BYTES * 3 // 4


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the engine recorded for one command: `ok`, `not_found` or `error`, and a detail."""

    outcome: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def signal_json(s: Signal) -> dict[str, Any]:
    return {
        "labels": [list(p) for p in s.labels],
        "firing": s.firing,
        "ts_ms": s.ts_ms,
        "severity": s.severity,
        "annotations": [list(p) for p in s.annotations],
        "source": s.source,
        "fingerprint": s.fingerprint,
        "links": [list(p) for p in s.links],
        "resolve_after_ms": s.resolve_after_ms,
    }


def _pairs(v: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(val)) for k, val in v)


def signal_of(d: dict[str, Any]) -> Signal:
    """The signal `signal_json` wrote. Raises KeyError, TypeError or ValueError on anything else."""
    return Signal(
        labels=_pairs(d["labels"]),
        firing=bool(d["firing"]),
        ts_ms=int(d["ts_ms"]),
        severity=str(d["severity"]),
        annotations=_pairs(d["annotations"]),
        source=str(d["source"]),
        fingerprint=None if d["fingerprint"] is None else str(d["fingerprint"]),
        links=_pairs(d["links"]),
        resolve_after_ms=None if d["resolve_after_ms"] is None else int(d["resolve_after_ms"]),
    )


class CommandExecutor:
    """Runs commands in the process leading the alert engine; subscribe `handle` with the engine."""

    def __init__(self, service: AlertService, db: sa.Engine, clock: Clock) -> None:
        self._service = service
        self._db = db
        self._clock = clock
        self.executed = 0
        self.refused = 0  # bad commands (unknown action, unreadable payload): recorded as error

    async def handle(self, msg: Message) -> None:
        if not isinstance(msg, AlertCommand):
            return
        if await asyncio.to_thread(self._outcome, msg.id) is not None:
            return  # ran before (a redelivery after the leader died): once is enough
        try:
            detail = await self._run(msg)
            outcome = Outcome("ok", detail)
        except NotFound:
            outcome = Outcome(
                "not_found", f"no such open {'incident' if 'incident' in msg.action else 'alert'}"
            )
        except (KeyError, TypeError, ValueError) as exc:
            self.refused += 1
            outcome = Outcome("error", f"bad command: {type(exc).__name__}: {exc}"[:500])
        # A failure writing the state above raises out of here: the bus redelivers the command.
        await asyncio.to_thread(self._record, msg, outcome)
        self.executed += 1

    async def _run(self, cmd: AlertCommand) -> str:
        svc, actor, target = self._service, cmd.actor, cmd.target
        if cmd.action == "ack":
            await svc.acknowledge(target, actor)
        elif cmd.action == "unack":
            await svc.unacknowledge(target, actor)
        elif cmd.action == "resolve":
            await svc.resolve(target, actor)
        elif cmd.action == "signals":
            signals = [signal_of(d) for d in json.loads(cmd.payload)]
            step = await svc.apply(signals)
            return json.dumps({"changed": len(step.changes)})
        elif cmd.action == "windows":
            await svc.reload_windows()
        elif cmd.action in INCIDENT_ACTIONS:
            payload = json.loads(cmd.payload or "{}")
            incidents = svc.core.incidents
            if cmd.action == "incident_note":
                text = str(payload["text"])
                await svc.incident_action(target, lambda inc, now: incidents.note(inc.id, text, actor, now))
            elif cmd.action == "incident_assign":
                who = payload.get("assignee")
                assignee = None if who is None else str(who)
                await svc.incident_action(
                    target, lambda inc, now: incidents.assign(inc.id, assignee, actor, now)
                )
            elif cmd.action == "incident_ack":
                await svc.incident_action(target, lambda inc, now: incidents.acknowledge(inc.id, actor, now))
            else:
                await svc.incident_action(
                    target, lambda inc, now: incidents.unacknowledge(inc.id, actor, now)
                )
        else:
            raise ValueError(f"unknown action {cmd.action!r}")
        return ""

    def _outcome(self, command_id: str) -> Outcome | None:
        return read_outcome(self._db, command_id)

    def _record(self, cmd: AlertCommand, outcome: Outcome) -> None:
        with self._db.begin() as conn:
            insert_ignore(
                conn,
                alert_commands,
                id=cmd.id,
                action=cmd.action[:32],
                target=cmd.target[:64],
                outcome=outcome.outcome,
                detail=outcome.detail,
                done_ms=self._clock.now_ms(),
            )

    def expire(self, before_ms: int) -> int:
        """Forgets outcomes older than `before_ms` (run by the retention job)."""
        with self._db.begin() as conn:
            return conn.execute(
                sa.delete(alert_commands).where(alert_commands.c.done_ms < before_ms)
            ).rowcount


def read_outcome(db: sa.Engine, command_id: str) -> Outcome | None:
    c = alert_commands.c
    with db.connect() as conn:
        row = conn.execute(sa.select(c.outcome, c.detail).where(c.id == command_id)).first()
    return Outcome(row.outcome, row.detail) if row is not None else None


class CommandClient:
    """The api side: publish a command, then wait up to `wait_s` for the engine's recorded outcome."""

    def __init__(
        self, bus: Bus, db: sa.Engine, clock: Clock, resolve_timeout_s: float, wait_s: float = WAIT_S
    ) -> None:
        self._bus = bus
        self._db = db
        self._clock = clock
        self.resolve_timeout_s = resolve_timeout_s
        self._wait_s = wait_s

    async def send(self, action: str, target: str, actor: str, payload: str = "") -> AlertCommand:
        """Publishes one command (raises BusError when the bus does not take it)."""
        cmd = AlertCommand.new(action, target, actor, payload, self._clock.now_ms())
        await self._bus.publish(cmd)
        return cmd

    async def run(
        self, action: str, target: str, actor: str, payload: str = ""
    ) -> tuple[str, Outcome | None]:
        """Publishes and waits; returns the command id and its outcome (None: not run yet)."""
        cmd = await self.send(action, target, actor, payload)
        return cmd.id, await self.wait(cmd.id)

    async def wait(self, command_id: str) -> Outcome | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        while True:
            found = await asyncio.to_thread(read_outcome, self._db, command_id)
            if found is not None or loop.time() >= deadline:
                return found
            await asyncio.sleep(_POLL_S)

    async def signals(self, signals: Sequence[Signal], actor: str) -> tuple[list[str], int | None]:
        """Sends signals in commands below the bus's message limit; returns their ids and how many alerts
        they changed (None if any command has not run within the wait)."""
        chunks: list[list[dict[str, Any]]] = [[]]
        size = 0
        for s in signals:
            d = signal_json(s)
            n = len(json.dumps(d))
            if chunks[-1] and size + n > _SIGNALS_BYTES:
                chunks.append([])
                size = 0
            chunks[-1].append(d)
            size += n
        sent = [await self.send("signals", "", actor, json.dumps(chunk)) for chunk in chunks if chunk]
        changed: int | None = 0
        for cmd in sent:
            outcome = await self.wait(cmd.id)
            if outcome is None or changed is None:
                changed = None
                continue
            changed += int(json.loads(outcome.detail or "{}").get("changed", 0)) if outcome.ok else 0
        return [c.id for c in sent], changed
