"""A throwaway PostgreSQL server for the tests, started from the machine's own binaries.

`PostgresServer.start()` runs initdb in a fresh temporary directory, starts the server on
127.0.0.1 (free port, unix sockets in the temporary directory, fsync off: test data need not
survive a crash) and waits a bounded time for it to accept connections. `stop()` kills it
(`-m immediate`) and removes the directory.

initdb refuses to run as root: when the tests run as root, the server runs as the `postgres`
system user (through `runuser`), which must exist. Any failure raises `PostgresStartError`
with the server log in its message, so that the test run fails with the cause in view.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

SYSTEM_USER = "postgres"  # who runs the server when we are root
SUPERUSER = "postgres"  # the database superuser created by initdb
START_TIMEOUT_SECONDS = 30.0
COMMAND_TIMEOUT_SECONDS = 60.0
LOG_TAIL_CHARS = 4000
START_ATTEMPTS = 3  # a free port may be taken between our check and the server's bind

SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "log_min_messages": "warning",
}
# A production server's durability, for benchmarks that compare with work that must survive a
# crash: a commit returns once its WAL is on disk.
DURABLE_SETTINGS = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


class PostgresStartError(RuntimeError):
    """The test PostgreSQL server could not be set up; the message holds the reason and log."""


def find_bindir() -> Path:
    """The directory of initdb, pg_ctl and postgres: PATH, pg_config, then the newest
    /usr/lib/postgresql/<version>/bin (Debian keeps the server binaries out of PATH)."""
    candidates: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted(
        (Path(d) for d in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: _version_key(p.parent.name),
        reverse=True,
    )
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise PostgresStartError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in PATH, pg_config "
        "--bindir or /usr/lib/postgresql/*/bin; run `bash .ci/install-postgres`"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    bindir: Path
    base_dir: Path  # the temporary directory: data/, the log, the unix socket
    port: int
    run_as: str | None  # system user running the server, None for ourselves
    durable: bool = False  # production durability (DURABLE_SETTINGS) instead of test speed
    extra_settings: dict[str, str] = field(default_factory=dict)  # e.g. a Citus node's
    _stopped: bool = field(default=False, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgres.log"

    def postmaster_pid(self) -> int:
        """The server's main process (benchmarks add up the CPU of it and its children)."""
        return int((self.data_dir / "postmaster.pid").read_text().split()[0])

    # --- lifecycle -----------------------------------------------------------------------

    @classmethod
    def start(cls, durable: bool = False, extra_settings: dict[str, str] | None = None) -> PostgresServer:
        bindir = find_bindir()
        run_as = SYSTEM_USER if os.geteuid() == 0 else None
        base_dir = _make_base_dir(run_as)
        server = cls(bindir, base_dir, free_port(), run_as, durable, dict(extra_settings or {}))
        try:
            server._initdb()
            for attempt in range(1, START_ATTEMPTS + 1):
                server._write_settings()
                if server._start_once():
                    break
                if attempt == START_ATTEMPTS or "could not bind" not in server.log_tail():
                    raise PostgresStartError(server._failure("did not start"))
                server.port = free_port()
            server._wait_until_ready()
        except BaseException:
            server.stop()
            raise
        atexit.register(server.stop)  # in case the session ends without fixture teardown
        return server

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if (self.data_dir / "postmaster.pid").exists():
            self._run(["pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"], check=False)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def halt(self) -> None:
        """Stop the server as a crash would (`-m immediate`), keeping its data: fault tests
        then `resume` it on the same port."""
        self._run(["pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"])

    def resume(self) -> None:
        """Start a halted server again, on the same port, and wait until it answers."""
        if not self._start_once():
            raise PostgresStartError(self._failure("did not start again"))
        self._wait_until_ready()

    def _initdb(self) -> None:
        self._run(
            [
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )

    def _write_settings(self) -> None:
        settings = {
            **SERVER_SETTINGS,
            **(DURABLE_SETTINGS if self.durable else {}),
            **self.extra_settings,
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base_dir}'",
        }
        # postgresql.auto.conf is read last, so these override postgresql.conf; rewriting it
        # (rather than appending) keeps a retry on another port clean.
        lines = [f"{key} = {value}\n" for key, value in settings.items()]
        (self.data_dir / "postgresql.auto.conf").write_text("".join(lines))

    def _start_once(self) -> bool:
        result = self._run(
            [
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(int(START_TIMEOUT_SECONDS)),
                "start",
            ],
            check=False,
        )
        return result.returncode == 0

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with self.admin_connection() as connection:
                    connection.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                last_error = exc
                time.sleep(0.1)
        raise PostgresStartError(
            self._failure(f"did not accept connections within {START_TIMEOUT_SECONDS:.0f} s ({last_error})")
        )

    # --- databases -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL of the server's maintenance database (`postgres`): a base for others."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin_connection(self) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=5,
        )

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database with a unique name; returns its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self.admin_connection() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        # FORCE (PostgreSQL 13+) ends the connections a test's engine may still hold.
        with self.admin_connection() as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # --- helpers -------------------------------------------------------------------------

    def log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        except OSError:
            return "(no server log)"

    def _failure(self, what: str) -> str:
        return (
            f"test PostgreSQL server ({self.bindir}, port {self.port}) {what}.\n--- server log ---\n{self.log_tail()}"
        )

    def _run(self, command: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / command[0]), *command[1:]]
        if self.run_as:
            argv = ["runuser", "-u", self.run_as, "--", *argv]
        try:
            # cwd: the server user may not be allowed into the directory pytest runs from.
            result = subprocess.run(
                argv, cwd=self.base_dir, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresStartError(self._failure(f"command {' '.join(argv)} failed: {exc}")) from exc
        if check and result.returncode != 0:
            raise PostgresStartError(
                self._failure(
                    f"command {' '.join(argv)} exited with {result.returncode}:\n{result.stdout}{result.stderr}"
                )
            )
        return result


def _make_base_dir(run_as: str | None) -> Path:
    """A fresh private directory; owned by `run_as` when the server runs as another user."""
    parent = Path(tempfile.gettempdir())
    if run_as and not _traversable_by_others(parent):
        parent = Path("/tmp")  # e.g. TMPDIR under /root: the server user could not reach it
    base_dir = Path(tempfile.mkdtemp(prefix="dmp-xds-pg-", dir=parent))
    if run_as:
        try:
            user = pwd.getpwnam(run_as)
        except KeyError as exc:
            shutil.rmtree(base_dir, ignore_errors=True)
            raise PostgresStartError(
                f"running as root, the test PostgreSQL server must run as the system user "
                f"{run_as!r} (initdb refuses root), and there is no such user"
            ) from exc
        os.chown(base_dir, user.pw_uid, user.pw_gid)
    return base_dir


def _traversable_by_others(path: Path) -> bool:
    for directory in [path, *path.parents]:
        if not directory.stat().st_mode & stat.S_IXOTH:
            return False
    return True
