"""`outpost-hub`: run the hub, check its config, migrate its database, manage its CA, enrollment tokens,
agent certificates and users, and read the audit log."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import signal
import sys
from pathlib import Path

import uvloop
from sqlalchemy import exc as sa_exc

from hub.auth.audit import MAX_LIMIT, AuditLog
from hub.auth.passwords import WeakPassword, hash_password
from hub.auth.rbac import Role
from hub.auth.users import UserError, Users
from hub.config import HubConfig, load_config
from hub.db import migrate
from hub.db.engine import create_engine
from hub.identity import pki
from hub.identity.db import EnrollState
from hub.identity.nats_auth import NatsServerFiles, render_config
from hub.identity.service import EnrollService
from hub.pipeline import Hub, ensure_pki
from shared import logging as outpost_logging
from shared.clock import SystemClock
from shared.config_errors import check_referenced_files
from shared.errors import ConfigError
from shared.private import private_dir, private_umask

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
    tok = sub.add_parser("token", help="enrollment tokens")
    tok_sub = tok.add_subparsers(dest="token_command", required=True)
    create = tok_sub.add_parser("create", help="make a token agents enroll with (shown once)")
    create.add_argument("--site", required=True)
    create.add_argument("--ttl", default="1h", help="lifetime: 90s, 30m, 1h, 7d")
    create.add_argument("--uses", type=int, default=1)
    tok_sub.add_parser("list", help="tokens with their site, expiry and uses (never the secrets)")
    revoke_tok = tok_sub.add_parser("revoke", help="revoke a token by id")
    revoke_tok.add_argument("id")
    tok_sub.add_parser("audit", help="every enrollment and renewal attempt, refused ones too")
    agent = sub.add_parser("agent", help="enrolled agents")
    agent_sub = agent.add_subparsers(dest="agent_command", required=True)
    revoke_agent = agent_sub.add_parser("revoke", help="refuse an agent's data and renewals (within 60 s)")
    revoke_agent.add_argument("id", help="agent identity, site/name")
    db = sub.add_parser("db", help="the hub's database schema (the hub also upgrades it when it starts)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="migrate the database to this hub's schema (safe while hubs start)")
    db_sub.add_parser("current", help="the database's schema revision and this hub's newest one")
    nats = sub.add_parser("nats-config", help="print a nats-server config mapping each agent certificate")
    nats.add_argument("--listen", default="0.0.0.0:4222")
    nats.add_argument("--store-dir", type=Path, required=True)
    nats.add_argument("--cert", type=Path, required=True, help="nats-server's certificate (from this CA)")
    nats.add_argument("--key", type=Path, required=True)
    user = sub.add_parser("user", help="users of the API and dashboard")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    user_add = user_sub.add_parser("add", help="add a user (password asked twice, or read from stdin)")
    user_add.add_argument("username")
    user_add.add_argument("--role", choices=[r.value for r in Role], default=Role.VIEWER.value)
    user_add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    user_sub.add_parser("list", help="users with their role and state (never a password)")
    audit = sub.add_parser("audit", help="who changed what through the API or this CLI, newest first")
    audit.add_argument("--limit", type=int, default=50)
    for sp in {
        *tok_sub.choices.values(),
        *db_sub.choices.values(),
        *user_sub.choices.values(),
        revoke_agent,
        nats,
        audit,
    }:
        sp.add_argument("--config", type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    private_umask()  # state and store databases (and their -wal/-shm), PKI, admin token: 0600 / 0700
    try:
        if args.command == "check-config":
            check_referenced_files(args.file, load_config(args.file))
            print(f"{args.file}: ok")
            return 0
        config = load_config(args.config)
        if args.config is not None:  # `run` checks what check-config checks, before starting anything
            check_referenced_files(args.config, config)
    except ConfigError as exc:
        print(f"outpost-hub: {exc}", file=sys.stderr)
        return 2
    outpost_logging.setup(config.log_level)
    if args.command == "run":
        # libuv's loop (uvloop): one loop serves HTTP, gRPC, the bus and every webhook POST, and at 1,000
        # new alert groups/s (bench/alerts.py) asyncio's own loop left the hub further behind.
        return uvloop.run(_run(config))
    if args.command == "ca":
        ensure_pki(config)
        print(f"CA ready in {config.pki_dir}")
        return 0
    if args.command == "db":
        return _db(config, args.db_command)
    if args.command in ("token", "agent", "nats-config"):
        return _enrollment(config, args)
    if args.command in ("user", "audit"):
        return _identity(config, args)
    return _issue(config, args)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _ttl_seconds(text: str) -> float:
    unit = text[-1:] if text[-1:] in _UNITS else "s"
    number = text[:-1] if text[-1:] in _UNITS else text
    return float(number) * _UNITS[unit]


def _db(config: HubConfig, command: str) -> int:
    """`db upgrade` / `db current`: exit 1 with the reason when the database cannot be migrated."""
    private_dir(config.data_dir)
    engine = create_engine(config.resolved_state_url())
    try:
        if command == "upgrade":
            done = migrate.upgrade(engine)
            was = "pre-Alembic tables" if done.stamped else (done.before or "empty")
            print(f"database at {done.after} (was {was})")
            return 0
        rev, head = migrate.current(engine), migrate.head()
        print(f"{rev or 'none'} ({'head' if rev == head else f'head is {head}'})")
        return 0
    except (migrate.MigrationError, sa_exc.OperationalError) as exc:
        print(f"outpost-hub: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def _enrollment(config: HubConfig, args: argparse.Namespace) -> int:
    """Token, agent-revocation and NATS-config commands: they work on the hub's database directly."""
    engine = create_engine(config.resolved_state_url())
    private_dir(config.data_dir)
    migrate.upgrade(engine)
    db = EnrollState(engine)
    now = SystemClock().now_ms()
    try:
        if args.command == "agent":
            done = db.revoke_agent(args.id, now)
            print(f"agent {args.id} revoked" if done else f"agent {args.id} was already revoked")
            return 0
        if args.command == "nats-config":
            files = NatsServerFiles(args.cert, args.key, pki.CaPaths(config.pki_dir).cert)
            print(render_config(args.listen, args.store_dir, files, db.enrolled_agents()), end="")
            return 0
        if args.token_command == "create":
            try:
                ttl = _ttl_seconds(args.ttl)
                issued = EnrollService(ensure_pki(config), db, 90).create_token(args.site, ttl, args.uses)
            except ValueError as exc:
                print(f"outpost-hub: {exc}", file=sys.stderr)
                return 2
            print(f"token: {issued.token}")
            print(f"  site {issued.site}, {issued.uses} use(s), expires in {args.ttl}")
            print("  the part after the last '.' is the SHA-256 of the hub CA; agents verify the CA with it")
            print(f"  enroll: outpost-agent enroll --hub HOST:{_enroll_port(config)} --token {issued.token}")
            return 0
        if args.token_command == "list":
            for t in db.list_tokens():
                state_text = "revoked" if t.revoked_ms else ("expired" if t.expires_ms <= now else "active")
                uses = f"{t.uses}/{t.max_uses}"
                print(f"{t.id}  site={t.site}  uses={uses}  expires_ms={t.expires_ms}  {state_text}")
            return 0
        if args.token_command == "revoke":
            done = db.revoke_token(args.id, now)
            print(f"token {args.id} revoked" if done else f"no active token {args.id}")
            return 0 if done else 1
        for e in db.audit_log():
            print(f"{e.at_ms}  {e.action}  token={e.token_id}  agent={e.agent}  peer={e.peer}  {e.outcome}")
        return 0
    finally:
        engine.dispose()


def _identity(config: HubConfig, args: argparse.Namespace) -> int:
    """`user add`, `user list` and `audit`: on the hub's database directly; CLI changes are audited too."""
    engine = create_engine(config.resolved_state_url())
    private_dir(config.data_dir)
    migrate.upgrade(engine)
    try:
        if args.command == "audit":
            for e in AuditLog(engine).entries(min(max(args.limit, 1), MAX_LIMIT)):
                print(f"{e.id}  {e.at_ms}  {e.actor}  {e.action}  {e.target}  peer={e.peer}  {e.outcome}")
            return 0
        users = Users(engine)
        if args.user_command == "list":
            for u in users.list():
                print(f"{u.id}  {u.username}  {u.role}  {'disabled' if u.disabled_ms else 'active'}")
            return 0
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else _ask_password()
        now = SystemClock().now_ms()
        try:
            added = users.add(args.username, hash_password(password), Role(args.role), now)
        except (UserError, WeakPassword) as exc:
            print(f"outpost-hub: {exc}", file=sys.stderr)
            return 2
        AuditLog(engine).record(
            now,
            f"cli:{getpass.getuser()}",
            "user.add",
            f"user:{added.username}",
            "cli",
            "ok",
            None,
            added.as_json(),
        )
        print(f"user {added.username} added (role {added.role}, id {added.id})")
        return 0
    finally:
        engine.dispose()


def _ask_password() -> str:
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("outpost-hub: the passwords differ")
    return first


def _enroll_port(config: HubConfig) -> str:
    return config.enroll.listen.rsplit(":", 1)[1] if config.enroll.listen else "<enroll.listen port>"


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
    # SIGHUP too: a closed terminal must stop the process, not leave it running without one.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    try:
        await hub.start()
    except (Exception, SystemExit) as exc:  # uvicorn exits on a taken port; state or store may be unreachable
        log.error("cannot start: %s: %s", type(exc).__name__, exc)
        await hub.aclose()
        return 1
    # What start-up made (modules, routes, schemas, models, config: ~215k objects) lives as long as the
    # process. Moved out of the collector's generations, it is no longer rescanned by every full pass,
    # which stalled the event loop ~80 ms each on a fresh hub (0.1 ms once frozen).
    gc.freeze()
    log.info("hub running (role %s)", config.role)
    await stop.wait()
    log.info("shutting down")
    await hub.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
