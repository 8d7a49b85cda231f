"""`outpost-agent`: enroll with a hub, check a config, or run the agent until SIGINT/SIGTERM/SIGHUP."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
from pathlib import Path

from agent.config import AgentConfig, load_config
from agent.enroll.enroll import EnrollError, enroll
from agent.runtime import Agent
from shared import logging as outpost_logging
from shared.config_errors import check_referenced_files
from shared.errors import ConfigError
from shared.private import private_dir, private_umask

log = logging.getLogger("outpost.agent")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="outpost-agent", description="The Outpost edge agent.")
    sub = p.add_subparsers(dest="command", required=True)
    chk = sub.add_parser(
        "check-config", help="validate an agent.yaml and the files it names, and exit (2 on error)"
    )
    chk.add_argument("file", type=Path)
    run = sub.add_parser("run", help="run the agent")
    run.add_argument("--config", type=Path, required=True)
    enr = sub.add_parser("enroll", help="get a certificate from a hub with an enrollment token")
    enr.add_argument("--hub", required=True, help="HOST:PORT of the hub's enrollment listener")
    enr.add_argument("--token", required=True, help="from `outpost-hub token create`")
    enr.add_argument(
        "--name", default=socket.gethostname().split(".")[0], help="agent id (default: hostname)"
    )
    enr.add_argument("--dir", type=Path, default=Path("/var/lib/outpost-agent/tls"), help="where to store")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    private_umask()  # spool, detector snapshots, ack files, enrolled keys: 0600 files, 0700 dirs
    if args.command == "enroll":
        return _enroll(args)
    path: Path = args.file if args.command == "check-config" else args.config
    try:
        config = load_config(path)
        # `run` checks the same files first: a config that passes check-config can start.
        check_referenced_files(path, config)
    except ConfigError as exc:
        print(f"outpost-agent: {exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(f"{path}: ok ({len(config.devices)} devices)")
        return 0
    outpost_logging.setup(config.log_level)
    try:
        private_dir(config.data_dir)
    except OSError as exc:
        log.error("cannot start: data_dir %s: %s", config.data_dir, exc.strerror)
        return 1
    return asyncio.run(_run(config))


def _enroll(args: argparse.Namespace) -> int:
    try:
        files = enroll(args.hub, args.token, args.name, args.dir)
    except EnrollError as exc:
        print(f"outpost-agent: enrollment failed: {exc}", file=sys.stderr)
        return 1
    print(f"enrolled as {args.name}; key and certificate stored 0600 in {args.dir}. agent.yaml:")
    print(f"hub:\n  tls:\n    ca_file: {files.ca_file}\n    cert_file: {files.cert_file}")
    print(f"    key_file: {files.key_file}")
    return 0


async def _run(config: AgentConfig) -> int:
    try:
        agent = Agent(config)
    except OSError as exc:
        log.error("cannot start: %s: %s", getattr(exc, "filename", ""), exc.strerror)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGHUP too: a closed terminal must stop the process, not leave it running without one.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    try:
        await agent.start()
    except OSError as exc:  # a port in use, an unwritable data dir: say which, release what started
        log.error("cannot start: %s", exc)
        await agent.aclose()
        return 1
    await stop.wait()
    log.info("shutting down: flushing and draining")
    await agent.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
