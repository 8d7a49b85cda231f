"""The demo's faults: a lab switch link that goes down and comes back, and a BMC that runs hot and cools.

So that a newcomer sees an alert fire, group into an incident and resolve within minutes of `make run`,
without touching anything:
- the link: real SNMPv2c `linkDown` / `linkUp` traps (Debian's `snmptrap`, the tool the demo already
  uses for `snmpget`) sent from the lab switch's own loopback address, which is how the agent tells
  which configured device sent a trap, each with the syslog line a switch logs for it (from the same
  address, so the agent names the same device);
- the temperature: the BMC's Thermal resource (a file sushy-static reads again on every GET) has its
  inlet reading rewritten, climbing past `UpperThresholdCritical` and back down.
Both repeat, each on its own period; one console line per fault state change. Timings come from
OUTPOST_DEMO_LINK_FAULT (`first,down,every` seconds) and OUTPOST_DEMO_TEMP_FAULT (`first,per_degree,every`),
or `off`, so the tests run the same code on short timings.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TRAP_COMMUNITY = "outpost-demo"
LINK_DOWN, LINK_UP = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"
IF_INDEX, IF_ADMIN, IF_OPER = "1.3.6.1.2.1.2.2.1.1", "1.3.6.1.2.1.2.2.1.7", "1.3.6.1.2.1.2.2.1.8"
# Ten minutes between link faults: a shorter cycle puts four changes inside the hub's flap window
# (10 min), and a flapping alert stays open instead of showing the resolve.
LINK_DEFAULT = (30.0, 90.0, 600.0)
# Starts at 20 s, 5 s per degree: warning (38 °C) after ~95 s, critical (42 °C) after ~115 s.
TEMP_DEFAULT = (20.0, 5.0, 900.0)
THERMAL = Path("Chassis") / "System.Embedded.1" / "Thermal" / "index.json"
SENSOR = "iDRAC.Embedded.1#SystemBoardInletTemp"
PEAK_ABOVE_CRITICAL = 4  # degrees
HOLD_STEPS = 6  # steps spent at the peak


def timings(value: str | None, default: tuple[float, float, float]) -> tuple[float, float, float] | None:
    """`first,second,every` seconds from an env value; None for `off`; the default when unset.

    Raises:
        ValueError: not three numbers of seconds in (0, 1 day) (the demo refuses to start, naming the
            variable).
    """
    if value is None or not value.strip():
        return default
    if value.strip().lower() == "off":
        return None
    try:
        parts = [float(p) for p in value.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3 or not all(0 < p < 86_400 for p in parts):  # also refuses nan and inf
        raise ValueError(f"expected `first,duration,every` seconds (each > 0, < 1 day) or `off`: {value!r}")
    return parts[0], parts[1], parts[2]


def say(line: str) -> None:
    print(f"  fault: {line}", flush=True)


@dataclass(frozen=True)
class LinkFault:
    """The lab switch's Ethernet1 goes down by trap `first` s after the agent listens, up `down` s later."""

    device: str
    source: str  # the switch's address: the trap leaves from it
    target: str  # the agent's trap receiver, host:port
    first: float
    down: float
    every: float
    syslog: str = ""  # the agent's syslog receiver (UDP host:port); "" sends no log line

    def log_line(self, up: bool) -> str:
        """Sends the switch's own syslog line for the change (RFC 5424 over UDP, from its address, as
        the trap is), so the dashboard's Logs show it beside the alert; returns "" or the error."""
        if not self.syslog:
            return ""
        pri = 23 * 8 + (5 if up else 3)  # local7, notice / err: what switches log a link change at
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        text = f"Interface Ethernet1, changed state to {'up' if up else 'down'}"
        line = f"<{pri}>1 {stamp} {self.device} IFMGR - LINK_{'UP' if up else 'DOWN'} - {text}"
        host, _, port = self.syslog.rpartition(":")
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((self.source, 0))
                s.sendto(line.encode(), (host, int(port)))
        except OSError as exc:
            return str(exc)
        return ""

    def trap(self, up: bool) -> str:
        """Sends linkDown or linkUp with the IF-MIB varbinds a switch puts in it; returns "" or the error."""
        oper = "1" if up else "2"
        cmd = [
            "snmptrap", "-v2c", "-c", TRAP_COMMUNITY, f"--clientaddr={self.source}", self.target, "",
            LINK_UP if up else LINK_DOWN,
            f"{IF_INDEX}.1", "i", "1", f"{IF_ADMIN}.1", "i", "1", f"{IF_OPER}.1", "i", oper,
        ]  # fmt: skip
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        return "" if done.returncode == 0 else done.stderr.strip() or f"snmptrap exited {done.returncode}"

    def run(self, stop: threading.Event) -> None:
        if not _wait_bound(self.target, stop):
            say(f"the agent's trap receiver never listened on {self.target}; no link fault")
            return
        if stop.wait(self.first):
            return
        while True:
            for up, wait in ((False, self.down), (True, self.every - self.down)):
                error = self.trap(up) or self.log_line(up)
                state = "UP again (linkUp" if up else "DOWN (linkDown"
                if error:
                    say(f"{self.device} Ethernet1: could not send the trap: {error}")
                else:
                    say(f"{self.device} Ethernet1 link {state} trap from {self.source} to {self.target})")
                if stop.wait(max(wait, 1.0)):
                    return


@dataclass(frozen=True)
class TempFault:
    """The BMC's inlet temperature climbs one degree per `per_degree` s past its critical limit, holds,
    and falls back to its reading; every `every` s from `first` s on."""

    device: str
    tree: Path  # the sushy-static mockup tree
    first: float
    per_degree: float
    every: float

    def run(self, stop: threading.Event) -> None:
        path = self.tree / THERMAL
        original = json.loads(path.read_text())
        sensor = next(t for t in original["Temperatures"] if t.get("MemberId") == SENSOR)
        base, warn, crit = (int(sensor[k]) for k in ("ReadingCelsius", "UpperThresholdNonCritical",
                                                     "UpperThresholdCritical"))  # fmt: skip
        steps = _profile(base, crit + PEAK_ABOVE_CRITICAL)
        state = "back to normal"
        if stop.wait(self.first):
            return
        try:
            while True:
                began = time.monotonic()
                for reading, rising in [*steps, (base, False)]:
                    _write_reading(path, original, reading)
                    now = _temp_state(reading, base, warn, crit, rising)
                    if now != state:
                        limits = f"warning {warn}, critical {crit}"
                        say(f"{self.device} {sensor['Name']} {now}: {reading} °C ({limits})")
                        state = now
                    if stop.wait(self.per_degree):
                        return
                if stop.wait(max(self.every - (time.monotonic() - began), 1.0)):
                    return
        finally:
            _write_reading(path, original, base)  # a stopped demo leaves the tree as it found it


def _profile(base: int, peak: int) -> list[tuple[int, bool]]:
    """(reading, rising) one step apart: up from base to peak, held there, back down to just above base."""
    up = list(range(base + 1, peak + 1))
    return [(r, True) for r in up] + [(peak, False)] * HOLD_STEPS + [(r, False) for r in reversed(up[:-1])]


def _temp_state(reading: int, base: int, warn: int, crit: int, rising: bool) -> str:
    if reading > crit:
        return "ABOVE its critical limit"
    if reading > warn:
        return "above its warning limit"
    if reading > base:
        return "climbing" if rising else "cooling"
    return "back to normal"


def _write_reading(path: Path, original: dict[str, object], reading: int) -> None:
    """Replaces the file in one rename: sushy-static reads it whole on every GET and must never see half."""
    doc = json.loads(json.dumps(original))
    for t in doc["Temperatures"]:  # type: ignore[attr-defined]
        if t.get("MemberId") == SENSOR:
            t["ReadingCelsius"] = reading
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)


def _wait_bound(target: str, stop: threading.Event, timeout: float = 120.0) -> bool:
    """True once something holds UDP `target` (the agent's receiver; a trap sent earlier would be lost)."""
    host, _, port = target.rpartition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((host, int(port)))
            except OSError:
                return True
        stop.wait(0.2)
    return False


class Faults:
    """Runs each fault in a daemon thread (never in the way of the demo's exit); `stop` ends them."""

    def __init__(self, runs: list[Callable[[threading.Event], None]]) -> None:
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=r, args=(self._stop,), name="demo-fault", daemon=True) for r in runs
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Stops the faults and waits briefly, so the BMC's file is back to its reading."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
