"""Child processes of a local stack: start one, know when it is ready, pause, kill or stop it."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

PAYONCE = [sys.executable, "-m", "payonce"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any PAYONCE_* setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYONCE_")}
    env.update(settings)
    return env


def as_user(user: str | None) -> dict[str, Any]:
    """subprocess options that run a child as ``user`` with that user's groups only (root's
    group would otherwise decide, and refuse, access to root's private directories)."""
    if user is None:
        return {}
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


class NotReady(RuntimeError):
    """A child process exited, or did not become ready in time; its log says why."""


@dataclass
class Child:
    """One child process, its log file, and how to tell it is ready (a URL or a log line)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str | None = None
    ready_line: str | None = None
    # Run as this system user (PostgreSQL refuses to run as root).
    user: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)
    # Where this start's output begins in the log (earlier runs append to the same file).
    _log_start: int = field(default=0, repr=False)

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log_start = self._log.tell()
        # The argv is built by this package (payonce, postgres, redis-server), never by input.
        self.process = subprocess.Popen(  # noqa: S603
            self.argv,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            **as_user(self.user),
        )

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise NotReady(f"{self.name} exited:\n{self.log_tail()}")
            if self._ready():
                return
            time.sleep(0.05)
        raise NotReady(f"{self.name} not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        if self.ready_url is not None:
            try:
                return httpx.get(self.ready_url, timeout=2).status_code == 200
            except httpx.TransportError:
                return False
        if self.ready_line is not None:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                return self.ready_line in log.read().decode(errors="replace")
        return True

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """kill -9: no clean-up, as a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()  # a paused process cannot handle SIGTERM
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self, timeout_s: float = 60.0) -> None:
        self.stop()
        self.start()
        self.wait_ready(timeout_s)
