"""Push scoring bench: what scoring pushed series costs ingest, and how fast the hub's detector bank scores.

The Telegraf-shaped payloads of bench/webhooks.py are written by `--clients` clients to two real
`outpost-hub run` processes in the same run, one with `detect.enabled: false` (the baseline: stored
only) and one with scoring on. Printed: ingest points/s of both (the ratio is the cost of publishing the
points on the bus, on the request path), then how long the scorer took until every point was scored
(`outpost_hub_detect_points_total`) and its own busy time (`outpost_hub_detect_tick_seconds_total`).
Goal: ingest with scoring >= 90 % of the baseline; scoring keeps up (scored points/s of busy time above
the ingest rate).

Exits non-zero when a write fails, a server does not start, or the scorer does not finish.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.webhooks import LIMITS, payloads, run  # noqa: E402
from tests.support.outpost import HubHandle, start_hub  # noqa: E402

GOAL_RATIO = 0.9


def _counter(hub: HubHandle, pattern: str) -> float:
    text = httpx.get(f"{hub.api_url}/metrics").text
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else 0.0


def _results(hub: HubHandle) -> dict[str, float]:
    text = httpx.get(f"{hub.api_url}/metrics").text
    pattern = r'^outpost_hub_detect_points_total\{result="(\w+)"\} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.M)}


def _ingest(
    root: Path, name: str, bodies: list[bytes], clients: int, detect: bool
) -> tuple[HubHandle, float]:
    hub = start_hub(root, name, extra={"auth": {"rate_limits": LIMITS}, "detect": {"enabled": detect}})
    try:
        return hub, run(
            f"{hub.api_url}/api/v2/write",
            {"org": "bench", "bucket": "bench"},
            {"Authorization": f"Token {hub.token}"},
            bodies,
            clients,
        )
    except BaseException:
        hub.stop()
        raise


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--lines", type=int, default=5000)
    ap.add_argument("--hosts", type=int, default=500)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    start_s = int(time.time()) - 3600
    bodies, points = payloads(args.requests, args.lines, args.hosts, start_s)
    # run() writes the first body once more as its warm-up; its points are counted alone, since bodies
    # differ by a point or two (5000 lines of 4, 5 and 6 fields in turn hold 24999 points, not 25000).
    expected = points + payloads(1, args.lines, args.hosts, start_s)[1]
    print(f"{args.requests} requests x {args.lines} lines ({points} points), {args.clients} clients")
    with tempfile.TemporaryDirectory(prefix="bench-push-scoring-") as tmp:
        base, base_s = _ingest(Path(tmp), "stored-only", bodies, args.clients, detect=False)
        base.stop()
        hub, hub_s = _ingest(Path(tmp), "scoring", bodies, args.clients, detect=True)
        try:
            began = time.perf_counter()
            while (seen := sum(_results(hub).values())) < expected:
                if time.perf_counter() - began > args.timeout:
                    print(f"scorer did not finish: {seen:.0f} of {expected} points", file=sys.stderr)
                    return 1
                time.sleep(0.2)
            drained_s = hub_s + time.perf_counter() - began
            results = _results(hub)
            busy_s = _counter(hub, r"^outpost_hub_detect_tick_seconds_total (\S+)$")
        finally:
            hub.stop()
    base_rate, hub_rate = points / base_s, points / hub_s
    ratio = hub_rate / base_rate
    print(f"  ingest, stored only (baseline)   {base_rate:12,.0f} points/s   ({base_s:.2f} s)")
    print(f"  ingest, scoring on               {hub_rate:12,.0f} points/s   ({hub_s:.2f} s)")
    # Concurrent clients push successive points of a series out of order: the older ones come late.
    print(f"  points by result                 {', '.join(f'{k} {v:.0f}' for k, v in results.items() if v)}")
    print(f"  every point scored after         {drained_s:12.2f} s from the first write")
    busy_rate = expected / max(busy_s, 1e-9)
    print(f"  scorer busy                      {busy_s:12.2f} s ({busy_rate:,.0f} points/s busy)")
    verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
    print(f"  scoring / baseline = {ratio:.2f} (goal >= {GOAL_RATIO:.2f}: {verdict}); measured under load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
