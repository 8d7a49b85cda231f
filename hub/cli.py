"""`outpost-hub`: run the hub, check its config, and manage its CA and agent certificates."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from hub import pki
from hub.config import HubConfig, load_config
from hub.pipeline import Hub, ensure_pki
from shared import logging as outpost_logging
from shared.errors import ConfigError

log = logging.getLogger("outpost.hub")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="outpost-hub", description="The Outpost hub.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the hub (gRPC ingest, store, API, dashboard)")
    run.add_argument("--config", type=Path, help="hub.yaml (defaults apply without one)")
    chk = sub.add_parser("check-config", help="validate a hub.yaml and exit")
    chk.add_argument("file", type=Path)
    ca = sub.add_parser("ca", help="certificate authority")
    ca_sub = ca.add_subparsers(dest="ca_command", required=True)
    ca_init = ca_sub.add_parser("init", help="create the CA and the hub's server certificate if missing")
    ca_init.add_argument("--config", type=Path)
    cert = sub.add_parser("cert", help="certificates")
    cert_sub = cert.add_subparsers(dest="cert_command", required=True)
    issue = cert_sub.add_parser("issue", help="issue an agent client certificate")
    issue.add_argument("--agent", required=True, help="agent id (becomes its identity)")
    issue.add_argument("--site", default="default", help="site the agent belongs to")
    issue.add_argument("--out", type=Path, help="directory for <agent>.pem/<agent>.key and ca.pem")
    issue.add_argument("--days", type=float, default=90)
    issue.add_argument("--config", type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-config":
            load_config(args.file)
            print(f"{args.file}: ok")
            return 0
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"outpost-hub: {exc}", file=sys.stderr)
        return 2
    outpost_logging.setup(config.log_level)
    if args.command == "run":
        return asyncio.run(_run(config))
    if args.command == "ca":
        ensure_pki(config)
        print(f"CA ready in {config.pki_dir}")
        return 0
    return _issue(config, args)


def _issue(config: HubConfig, args: argparse.Namespace) -> int:
    ca = ensure_pki(config)
    out: Path = args.out or config.pki_dir / "agents"
    agent_id = f"{args.site}/{args.agent}"
    pair = pki.issue(ca, args.agent, agent_uri=agent_id, days=args.days)
    pki.write_pair(pair, out / f"{args.agent}.pem", out / f"{args.agent}.key")
    (out / "ca.pem").write_bytes(ca.cert.read_bytes())
    cert_path = out / f"{args.agent}.pem"
    print(f"issued certificate for agent {agent_id}: {cert_path} (key 0600), CA in {out / 'ca.pem'}")
    return 0


async def _run(config: HubConfig) -> int:
    hub = Hub(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await hub.start()
    except OSError as exc:
        log.error("cannot start: %s", exc)
        await hub.aclose()
        return 1
    log.info("hub running")
    await stop.wait()
    log.info("shutting down")
    await hub.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
