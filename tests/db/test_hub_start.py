"""Real hub processes and `outpost-hub db` on real databases: an existing data dir made before Alembic
upgrades at start, hubs starting together on one PostgreSQL migrate it once, bad databases stop the start."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml

from hub.db import migrate
from hub.db.engine import create_engine
from tests.db.legacy import ADMIN_TOKEN, create_legacy_database
from tests.support.hubdb import HEAD
from tests.support.outpost import BIN, HubHandle, start_hub
from tests.support.postgres import Postgres

pytestmark = pytest.mark.e2e

MIGRATED = "hub database migrated from an empty database to " + HEAD


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "outpost-hub"), *args, "--config", str(config)], capture_output=True, text=True, timeout=60
    )


def _config(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), **extra}))
    return path


def test_hub_started_on_a_data_dir_made_before_alembic_keeps_its_agents_and_admin_token(
    tmp_path: Path,
) -> None:
    data = tmp_path / "hub"
    data.mkdir()
    engine = create_engine(f"sqlite:///{data / 'state.sqlite'}")
    create_legacy_database(engine)
    (data / "admin.token").write_text(ADMIN_TOKEN + "\n")  # what `make run` left there
    hub = start_hub(tmp_path)
    try:
        agents = hub.get("/api/v1/agents")["agents"]
        log = hub.service.log()
    finally:
        hub.stop()
    assert [(a["id"], a["batches_received"], a["gaps"], a["duplicates"]) for a in agents] == [
        ("dc1/edge1", 10, 2, 2),
        ("dc2/edge7", 1, 0, 0),
    ]
    assert f"hub database migrated from its pre-Alembic tables to {HEAD}" in log
    assert "admin API token (shown once" not in log  # the old token is still the admin's
    try:
        assert migrate.current(engine) == HEAD
    finally:
        engine.dispose()


def test_two_hubs_starting_at_once_on_one_postgresql_both_run_and_migrate_it_once(tmp_path: Path) -> None:
    pg = Postgres(tmp_path / "logs")
    hubs: list[HubHandle] = []
    try:
        url = pg.create_database("outpost")
        with ThreadPoolExecutor(2) as pool:
            starting = [pool.submit(start_hub, tmp_path, n, {"state_url": url}) for n in ("hub-a", "hub-b")]
            hubs = [f.result() for f in starting]
        logs = [h.service.log() for h in hubs]
        (holder,) = [h for h in hubs if (h.data_dir / "admin.token").exists()]  # exactly one made it
        token = holder.token
        for h in hubs:
            r = httpx.get(h.api_url + "/api/v1/agents", headers={"Authorization": f"Bearer {token}"})
            assert (r.status_code, r.json()) == (200, {"agents": []})
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        finally:
            engine.dispose()
    finally:
        for h in hubs:
            h.stop()
        pg.stop()
    assert versions == [HEAD]
    assert [MIGRATED in log for log in logs].count(True) == 1, logs


def test_db_commands_show_and_upgrade_the_revision_and_two_at_once_upgrade_once(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert _cli(config, "db", "current").stdout == f"none (head is {HEAD})\n"
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: _cli(config, "db", "upgrade"), range(2)))
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    assert sorted(r.stdout for r in runs) == sorted(
        [f"database at {HEAD} (was empty)\n", f"database at {HEAD} (was {HEAD})\n"]
    )
    assert _cli(config, "db", "current").stdout == f"{HEAD} (head)\n"


def test_a_database_with_only_some_of_the_hubs_tables_stops_the_hub_and_the_upgrade_with_the_reason(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    (tmp_path / "data").mkdir()
    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'state.sqlite'}")
    try:
        create_legacy_database(engine)
        with engine.begin() as db:
            db.exec_driver_sql("DROP TABLE enroll_audit")
    finally:
        engine.dispose()
    upgrade = _cli(config, "db", "upgrade")
    run = subprocess.run(
        [str(BIN / "outpost-hub"), "run", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    reason = "has some of the hub's tables but not enroll_audit: not migrating it"
    assert (upgrade.returncode, upgrade.stdout) == (1, "")
    assert reason in upgrade.stderr
    assert run.returncode == 1
    assert f"cannot start: MigrationError: the hub database {reason}" in run.stderr
