"""Syslog receiver throughput: lines/s from a TCP socket to encoded LOGS envelopes, and wire bytes per line.

Data: the Linux and OpenSSH systems of Loghub-2k (real syslog content) rebuilt as RFC 3164 lines
(`<pri>Mon DD HH:MM:SS host Component[Pid]: Content`), repeated to `--lines`; synthetic lines when the
data is absent. A separate process writes them into one TCP connection (LF framing). Measured: socket
read, framing, rate limit, parse, record, queue, LogBatcher and codec.encode of every batch. Baseline in
the same run: a bare asyncio server that only counts LFs over the same bytes (the loop's own floor).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import tempfile
import time
from pathlib import Path

from agent.collect.syslog.config import SyslogConfig
from agent.collect.syslog.server import SyslogReceiver
from agent.outbox.batch import Sequencer
from agent.outbox.log_batch import LogBatcher
from shared import codec
from shared.clock import SystemClock

_SENDER = "import socket,sys; s=socket.create_connection(('127.0.0.1', int(sys.argv[1]))); "
_SENDER += "s.sendall(open(sys.argv[2], 'rb').read()); s.close()"


# Column names per system: (month, day, pid); the two Loghub files name them differently.
_COLUMNS = {"Linux": ("Month", "Date", "PID"), "OpenSSH": ("Date", "Day", "Pid")}


def loghub_lines(data: Path) -> list[bytes]:
    out = []
    for system, (month, day, pid) in _COLUMNS.items():
        path = data / system / f"{system}_2k.log_structured.csv"
        if not path.exists():
            continue
        with path.open(newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.DictReader(f):
                tag = row["Component"] + (f"[{row[pid]}]" if row[pid] else "")
                stamp = f"{row[month]} {int(row[day]):2d} {row['Time']}"
                out.append(f"<86>{stamp} {system.lower()}-host {tag}: {row['Content']}".encode())
    return out or [b"<13>Dec  2 10:00:00 sw1 kernel: eth%d link down" % i for i in range(2000)]


async def _send(port: int, payload: Path) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _SENDER, str(port), str(payload))
    await proc.wait()


async def run_receiver(payload: Path, n: int) -> tuple[float, int]:
    cfg = SyslogConfig(
        enabled=True, udp_listen=None, tcp_listen="127.0.0.1:0", queue_size=100_000, burst_per_source=10**7
    )
    receiver = SyslogReceiver(cfg)
    await receiver.start()
    batcher = LogBatcher(Sequencer(1), SystemClock(), 5000, 1024 * 1024, 2.0)
    wire = 0
    start = time.perf_counter()
    sender = asyncio.create_task(_send(receiver.tcp_port, payload))
    got = 0
    while got < n:
        records = await receiver.take(5000)
        got += len(records)
        wire += sum(len(codec.encode(b)) for b in batcher.add(records))
    last = batcher.flush()
    wire += len(codec.encode(last)) if last is not None else 0
    elapsed = time.perf_counter() - start
    await sender
    await receiver.aclose()
    return elapsed, wire


async def run_baseline(payload: Path, n: int) -> float:
    done = asyncio.Event()
    seen = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        while data := await reader.read(64 * 1024):
            seen += data.count(b"\n")
            if seen >= n:
                done.set()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    start = time.perf_counter()
    sender = asyncio.create_task(_send(port, payload))
    await done.wait()
    elapsed = time.perf_counter() - start
    await sender
    server.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/loghub"))
    ap.add_argument("--lines", type=int, default=200_000)
    args = ap.parse_args()
    sample = loghub_lines(args.data)
    lines = [sample[i % len(sample)] for i in range(args.lines)]
    with tempfile.TemporaryDirectory() as tmp:
        payload = Path(tmp) / "lines"
        payload.write_bytes(b"\n".join(lines) + b"\n")
        raw = payload.stat().st_size
        base = asyncio.run(run_baseline(payload, args.lines))
        took, wire = asyncio.run(run_receiver(payload, args.lines))
    print(f"syslog: {args.lines} lines ({len(sample)} distinct), {raw / args.lines:.0f} B/line raw")
    print(f"  baseline (count LFs only): {args.lines / base:12,.0f} lines/s")
    print(f"  receiver -> LOGS envelopes: {args.lines / took:11,.0f} lines/s ({took / base:.1f}x the floor)")
    print(
        f"  on the wire: {wire / args.lines:.1f} B/line (zstd envelopes), {raw / wire:.1f}x smaller than raw"
    )


if __name__ == "__main__":
    main()
