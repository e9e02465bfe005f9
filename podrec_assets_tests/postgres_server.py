"""A throwaway PostgreSQL server (Debian's `postgresql` package) for tests of Dagster's Postgres storage: initdb and
pg_ctl under a temporary folder, listening on 127.0.0.1 only, password auth, removed at the end."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Debian keeps the server binaries off PATH, one folder per major version.
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
MISSING = (
    "PostgreSQL's server binaries (initdb, pg_ctl) were not found on PATH or in /usr/lib/postgresql/*/bin: "
    "install Debian's package (`apt-get install postgresql`; .ci/run does it)"
)


class PostgresMissing(RuntimeError):
    pass


def server_bin_dir() -> Path:
    """The folder holding initdb and pg_ctl: PATH first, else the newest Debian version."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    folders = [Path(f) for f in glob.glob(DEBIAN_BIN_GLOB) if (Path(f) / "initdb").exists()]
    if not folders:
        raise PostgresMissing(MISSING)
    return max(folders, key=lambda f: int(f.parent.name) if f.parent.name.isdigit() else 0)


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    db_name: str

    def connect(self, db_name: str | None = None):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                dbname=db_name or self.db_name)  # fmt: skip


@contextmanager
def postgres_server(port: int, db_name: str = "dagster", user: str = "dagster") -> Iterator[PostgresServer]:
    """Start a server on 127.0.0.1:`port` with database `db_name`; stop it and delete its files afterwards.

    Postgres refuses to run as root: as root (CI), the server runs as the `postgres` user the package creates."""
    bin_dir = server_bin_dir()
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError as error:
            raise PostgresMissing(
                "running as root and there is no `postgres` user to run the server as"
            ) from error
        as_user = ["runuser", "-u", "postgres", "--"]

    root = Path(tempfile.mkdtemp(prefix="podrec-pg-"))
    data, log = root / "data", root / "server.log"
    password = secrets.token_urlsafe(16)
    (root / "pwfile").write_text(password + "\n")
    if owner is not None:
        for path in (root, root / "pwfile"):
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, cwd=root)
        if done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:1])} failed:\n{done.stdout}{done.stderr}{server_log}")

    started = False
    try:
        # scram passwords over TCP (what production uses), trust only on the private socket in `root`
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", user, "--pwfile", str(root / "pwfile"),
            "--auth-host=scram-sha-256", "--auth-local=trust", "--encoding=UTF8", "--no-instructions")  # fmt: skip
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} -c fsync=off"
        run(
            str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"
        )
        started = True
        server = PostgresServer("127.0.0.1", port, user, password, db_name)
        connection = server.connect("postgres")
        try:
            connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{db_name}"')
        finally:
            connection.close()
        yield server
    finally:
        if started:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
