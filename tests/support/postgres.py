"""A throwaway PostgreSQL server (Debian's binaries) on a free port, for hub-state tests at scale."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.support.procs import Service, free_port, start_service


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} not found: install Debian's postgresql (make apt)")
    return found[-1]


def _as_postgres(cmd: Sequence[str]) -> list[str]:
    """PostgreSQL refuses to run as root; as root, run it as the `postgres` system user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


class Postgres:
    """initdb + postgres in a temp dir owned by the server's user; `url` is a SQLAlchemy URL."""

    def __init__(self, log_dir: Path) -> None:
        # Not under pytest's tmp dir: as root that is 0700 and the postgres user could not enter it.
        self.root = Path(tempfile.mkdtemp(prefix="outpost-pg-"))
        data, sock = self.root / "data", self.root / "sock"
        sock.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(sock, "postgres")
        subprocess.run(
            _as_postgres([_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]),
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.port = free_port()
        cmd = [
            _bin("postgres"),
            "-D",
            str(data),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            str(sock),
            "-c",
            "fsync=off",
            "-c",
            "max_connections=200",
        ]
        self.service: Service = start_service(
            "postgres",
            _as_postgres(cmd),
            log_dir,
            port=self.port,
            ready_log="database system is ready to accept connections",
            timeout=60,
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str) -> str:
        """A fresh database; returns its SQLAlchemy URL."""
        subprocess.run(
            [
                _bin("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-c",
                f"CREATE DATABASE {name}",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.service.stop()
        shutil.rmtree(self.root, ignore_errors=True)
