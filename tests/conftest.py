"""Suite-wide fixtures: a throw-away PostgreSQL on loopback, and ``database_url``.

``postgresql_server`` (session) runs ``initdb`` and ``pg_ctl`` from the Debian
``postgresql`` package in a temporary directory, as the ``postgres`` user (via
``runuser``) when the suite runs as root, listening on 127.0.0.1 on a free port
with trust authentication for loopback only.  It fails (never skips) when
PostgreSQL is not installed: ``make test`` installs it.  ``database_url`` is
parametrized ``sqlite`` / ``postgresql``; each PostgreSQL test gets a fresh
database, dropped afterwards.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_START_TIMEOUT = 60


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"


def _pg_binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        pytest.fail(
            f"PostgreSQL's {name} not found: install the Debian package postgresql "
            "(`make test` installs it when run as root)",
            pytrace=False,
        )
    return found[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresServer]:
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    base = Path(tempfile.mkdtemp(prefix="mrf-pg-"))
    data, log = base / "data", base / "postgres.log"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    try:
        subprocess.run(
            _as_postgres([initdb, "-D", str(data), "-U", "postgres", "-A", "trust",
                          "-E", "UTF8", "--no-sync", "--no-instructions"]),
            check=True, capture_output=True, timeout=PG_START_TIMEOUT,
        )  # fmt: skip
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -F -c max_connections=200"
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w",
                          "-t", str(PG_START_TIMEOUT), "start"]),
            check=True, capture_output=True, timeout=PG_START_TIMEOUT + 5,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        text = log.read_text() if log.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc.stderr!r}\n{text}", pytrace=False)
    try:
        yield PostgresServer("127.0.0.1", port)
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgresql_url(postgresql_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped after the test)."""
    import psycopg

    name = f"t_{secrets.token_hex(6)}"
    admin = f"host={postgresql_server.host} port={postgresql_server.port} user=postgres"
    with psycopg.connect(f"{admin} dbname=postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield postgresql_server.url(name)
    with psycopg.connect(f"{admin} dbname=postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on a SQLite file (WAL) and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/db/mrf.db"
    url: str = request.getfixturevalue("postgresql_url")
    return url
