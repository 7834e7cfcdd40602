"""Real servers for the fleet tests and the load benchmark, on free loopback ports only: Debian's mosquitto
with a password file, and a throwaway PostgreSQL cluster (initdb, pg_ctl) in a temporary folder with its
unix socket there too. initdb refuses to run as root, so as root the cluster belongs to the `postgres`
user (created as a system user when missing)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, what: str, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port}")


def find_initdb() -> str | None:
    found = shutil.which("initdb")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return candidates[-1] if candidates else None


def missing_servers() -> str | None:
    """Why the real-server tests cannot run here, or None."""
    if not shutil.which("mosquitto") and not os.path.exists("/usr/sbin/mosquitto"):
        return "mosquitto is not installed (apt-get install mosquitto)"
    if not find_initdb():
        return "PostgreSQL's initdb is not installed (apt-get install postgresql)"
    return None


def _mosquitto_binary() -> str:
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Mosquitto:
    """One broker on a fixed port across kills and restarts (so clients reconnect to the same address)."""

    def __init__(self, folder: Path, users: dict[str, str], port: int | None = None) -> None:
        self.folder, self.port = folder, port or free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.password_file = folder / "passwords"
        self.password_file.write_text("")
        passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        for user, password in users.items():
            subprocess.run([passwd, "-b", str(self.password_file), user, password], check=True, capture_output=True)
        self.config = folder / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {self.password_file}",
            "persistence false",
            "max_queued_messages 0",  # an offline collector's session queues without limit (default 1000)
            "max_inflight_messages 0",
            f"log_dest file {folder / 'mosquitto.log'}",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # the files live in root's temporary folder
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        self.process = subprocess.Popen([_mosquitto_binary(), "-c", str(self.config)], stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, self.process, "mosquitto")
        return self

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, sig: int) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)


def _cluster_user() -> str | None:
    """The user that owns the cluster: None when not root (the current user), else `postgres`."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    return "postgres"


class Postgres:
    """A throwaway cluster: superuser `agecam`, trust authentication on loopback and its own socket folder."""

    def __init__(self, fsync: bool = False) -> None:
        self.user = _cluster_user()
        self.folder = Path(tempfile.mkdtemp(prefix="agecam-pg-"))
        if self.user:
            shutil.chown(self.folder, self.user)
        self.port, self.fsync = free_port(), fsync
        self.bin = Path(find_initdb() or "initdb").parent

    def _as_owner(self, *command: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *command] if self.user else list(command)

    def start(self) -> Postgres:
        data = self.folder / "data"
        initdb = [str(self.bin / "initdb"), "-D", str(data), "-U", "agecam", "--auth=trust", "-E", "UTF8", "--no-sync"]
        subprocess.run(self._as_owner(*initdb), check=True, capture_output=True)
        options = f"-p {self.port} -h 127.0.0.1 -k {self.folder} -c fsync={'on' if self.fsync else 'off'}"
        options += " -c max_connections=50 -c shared_buffers=64MB"
        command = [str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.folder / "log"), "-o", options, "-w"]
        subprocess.run(self._as_owner(*command, "start"), check=True, capture_output=True)
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://agecam@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        command = [str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop"]
        subprocess.run(self._as_owner(*command), capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)
