"""A throwaway PostgreSQL server for the benchmarks: initdb into a temporary directory, started on a free
loopback port with its defaults for durability (fsync on, synchronous commit), a database per deployment.

Authentication is `trust` for loopback and the local socket: the server lives for one run, in a directory only
the run can reach, and no password then needs handing to the servers under test. As root, initdb and the server
run as the `postgres` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import procs

START_TIMEOUT_S = 60
SUPERUSER = "postgres"
MAX_PID_FILE_BYTES = 4096


def find_bindir() -> Path | None:
    """Where initdb and pg_ctl are: `pg_config --bindir`, then Debian's versioned directories, then PATH."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        shown = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False, timeout=30)
        if shown.returncode == 0:
            candidates.append(Path(shown.stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    return next((d for d in candidates if (d / "initdb").is_file() and (d / "pg_ctl").is_file()), None)


@dataclass
class PgServer:
    bindir: Path
    workdir: Path
    port: int = 0

    @property
    def datadir(self) -> Path:
        return self.workdir / "pgdata"

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        socketdir = self.workdir / "socket"
        socketdir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            # The server's user must reach its directories (tempfile makes the run's directory 0700, root's).
            for parent in (self.workdir.parent, self.workdir):
                parent.chmod(parent.stat().st_mode | 0o011)
            for path in (self.workdir, socketdir):
                shutil.chown(path, user=SUPERUSER, group=SUPERUSER)
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ]
        )
        self.port = procs.free_port()
        options = f"-p {self.port} -k {socketdir} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200"
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.workdir / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "start",
            ]
        )

    def create_database(self, name: str) -> None:
        if not name.isidentifier():
            raise ValueError(f"database name {name!r} is not a plain identifier")
        self._run(
            [
                str(self.bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-T",
                "template0",
                name,
            ]
        )

    def pids(self) -> list[int]:
        """The postmaster and its children (a backend per connection, the writer, the WAL writer...), now."""
        pid_file = self.datadir / "postmaster.pid"
        try:
            main = int(pid_file.read_text()[:MAX_PID_FILE_BYTES].split("\n", 1)[0])
        except (OSError, ValueError):
            return []
        found = [main]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                raw = stat.read_text()
            except OSError:
                continue  # gone meanwhile
            if int(raw[raw.rindex(")") + 2 :].split()[1]) == main:
                found.append(int(stat.parent.name))
        return found

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"])

    def _run(self, argv: list[str]) -> None:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", SUPERUSER, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=START_TIMEOUT_S + 30)
        if done.returncode != 0:
            raise RuntimeError(
                f"{Path(argv[-1]).name}: {' '.join(argv[:1])} failed ({done.returncode}): {done.stderr[-2000:]}"
            )
