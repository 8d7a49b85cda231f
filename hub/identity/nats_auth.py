"""Renders nats-server's TLS and authorization config so that certificates, not payloads, name agents.

`verify_and_map` makes nats-server map each client certificate to a user: agents by their SAN URI
(`outpost://<site>/<agent>`), each allowed to publish only to `<prefix>.<site>.<agent>` (and to receive
its JetStream acks); the hub by its certificate's subject, allowed to run the ingest stream and consumer,
and to publish and consume the bus (`<bus_prefix>.>`, `hub/bus/nats.py`) that its api and worker processes
share.
Regenerate it (`outpost-hub nats-config`) and reload nats-server after enrolling or revoking agents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from shared.tls import AGENT_URI_SCHEME

HUB_NATS_CN = "outpost-hub"


@dataclass(frozen=True, slots=True)
class NatsServerFiles:
    """What nats-server needs on disk: its own certificate and key, and the hub's CA."""

    cert_file: Path
    key_file: Path
    ca_file: Path


def render_config(
    listen: str,
    store_dir: Path,
    files: NatsServerFiles,
    agents: list[str],
    subject_prefix: str = "outpost.ingest",
    bus_prefix: str = "outpost.bus",
) -> str:
    """A complete nats-server config (JetStream on, mTLS required, one user per agent `site/name`)."""
    users = [
        {
            "user": AGENT_URI_SCHEME + agent,
            "permissions": {
                "publish": {"allow": [f"{subject_prefix}.{agent.replace('/', '.')}"]},
                "subscribe": {"allow": ["_INBOX.>"]},
            },
        }
        for agent in agents
    ]
    users.append(
        {
            "user": f"CN={HUB_NATS_CN}",
            "permissions": {
                # The JetStream API (streams, consumers, pull requests), acks, and the bus's subjects.
                "publish": {"allow": ["$JS.API.>", "$JS.ACK.>", "_INBOX.>", f"{bus_prefix}.>"]},
                "subscribe": {"allow": ["_INBOX.>", f"{subject_prefix}.>", f"{bus_prefix}.>"]},
            },
        }
    )
    conf = {
        "listen": listen,
        "jetstream": {"store_dir": str(store_dir)},
        "tls": {
            "cert_file": str(files.cert_file),
            "key_file": str(files.key_file),
            "ca_file": str(files.ca_file),
            "verify_and_map": True,
        },
        "authorization": {"users": users},
    }
    return json.dumps(conf, indent=2) + "\n"  # nats-server's config format accepts JSON
