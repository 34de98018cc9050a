"""PostgreSQL and Redis servers for a local stack, started from the machine's own binaries."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from payonce.entrypoints.processes import Child, as_user, clean_env, free_port

# Makes a (not yet started) server in a directory; answers it and its URL.
ServerFactory = Callable[[Path], tuple[Child, str]]


class MissingServer(RuntimeError):
    """A server the local stack needs is not installed, or could not be set up."""


def _postgres_bin() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    initdb = shutil.which("initdb")
    if initdb is None:
        raise MissingServer("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    return Path(initdb).parent


def _hand_over(directory: Path, user: str) -> None:
    """Let ``user`` own ``directory`` and reach it through its parents."""
    record = pwd.getpwnam(user)
    directory.mkdir(parents=True, exist_ok=True)
    os.chown(directory, record.pw_uid, record.pw_gid)
    for parent in directory.parents:
        parent.chmod(parent.stat().st_mode | 0o001)


def postgres(directory: Path, *, port: int | None = None) -> tuple[Child, str]:
    """A PostgreSQL server in ``directory`` (made on first use) and its URL; not yet started."""
    bin_dir = _postgres_bin()
    # PostgreSQL refuses to run as root: as root, it runs as the postgres system user.
    user = "postgres" if os.geteuid() == 0 else None
    data = directory / "data"
    if user is not None:
        _hand_over(directory, user)
    if not (data / "PG_VERSION").exists():
        made = subprocess.run(  # noqa: S603
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
            capture_output=True,
            text=True,
            cwd=directory,  # initdb must be able to enter the directory it starts in
            **as_user(user),
        )
        if made.returncode != 0:
            raise MissingServer(f"initdb failed:\n{made.stdout}{made.stderr}")
    port = port or free_port()
    child = Child(
        name="postgresql",
        argv=[
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(directory),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=200",
        ],
        env=clean_env(),
        log_path=directory / "postgresql.log",
        ready_line="database system is ready to accept connections",
        user=user,
    )
    return child, f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"


def redis(directory: Path, *, port: int | None = None) -> tuple[Child, str]:
    """A Redis server keeping nothing on disk (payonce never needs it to), and its URL."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise MissingServer("Redis is not installed (Debian: apt-get install redis-server)")
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    child = Child(
        name="redis",
        argv=[
            executable,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        env=clean_env(),
        log_path=directory / "redis.log",
        ready_line="Ready to accept connections",
    )
    return child, f"redis://127.0.0.1:{port}/0"
