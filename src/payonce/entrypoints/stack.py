"""The local multi-instance stack: PostgreSQL, Redis, the sandbox, API instances and workers.

`payonce stack` runs it for trying the distributed deployment on one machine; the tests run the
same ``Stack`` against the PostgreSQL and Redis servers they started themselves.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from payonce.entrypoints import stack_servers
from payonce.entrypoints.processes import PAYONCE, Child, NotReady, clean_env, free_port


@dataclass
class StackPlan:
    """What to run. A URL left unset starts that server in ``data_dir``."""

    data_dir: Path
    database_url: str | None = None
    redis_url: str | None = None
    api_instances: int = 2
    workers: int = 1
    host: str = "127.0.0.1"
    # The first API instance's port; the others follow it. None: any free ports.
    port: int | None = None
    # Extra PAYONCE_* settings for every payonce process (e.g. PAYONCE_LOCK_TTL_S).
    settings: dict[str, str] = field(default_factory=dict)


@dataclass
class Stack:
    plan: StackPlan
    api_key: str = field(default_factory=lambda: f"sk_{secrets.token_urlsafe(24)}")
    servers: list[Child] = field(default_factory=list)
    sandbox: Child | None = None
    apis: list[Child] = field(default_factory=list)
    workers: list[Child] = field(default_factory=list)
    database_url: str = ""
    redis_url: str = ""
    sandbox_url: str = ""

    @property
    def api_urls(self) -> list[str]:
        return [child.env["PAYONCE_PUBLIC_URL"] for child in self.apis]

    @property
    def children(self) -> list[Child]:
        return [*self.servers, *([self.sandbox] if self.sandbox else []), *self.apis, *self.workers]

    def start(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        plan = self.plan
        plan.data_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = plan.database_url or self._server(stack_servers.postgres, "postgresql")
        self.redis_url = plan.redis_url or self._server(stack_servers.redis, "redis")

        base = {
            "PAYONCE_DATA_DIR": str(plan.data_dir / "payonce"),
            "PAYONCE_DATABASE_URL": self.database_url,
            "PAYONCE_REDIS_URL": self.redis_url,
            "PAYONCE_API_KEY": self.api_key,
            **plan.settings,
        }
        self._migrate(base)

        sandbox_port = free_port(plan.host)
        self.sandbox_url = f"http://{plan.host}:{sandbox_port}/sandbox"
        self.sandbox = self._payonce(
            "sandbox",
            ["sandbox", "--host", plan.host, "--port", str(sandbox_port)],
            base,
            ready_url=f"{self.sandbox_url}/",
        )
        self.sandbox.start()  # known to stop() before it is waited for
        self.sandbox.wait_ready()
        base["PAYONCE_SANDBOX_URL"] = self.sandbox_url

        for index in range(plan.api_instances):
            port = plan.port + index if plan.port else free_port(plan.host)
            url = f"http://{plan.host}:{port}"
            self.apis.append(
                self._payonce(
                    f"api{index + 1}",
                    ["serve", "--host", plan.host, "--port", str(port)],
                    {**base, "PAYONCE_PUBLIC_URL": url},
                    ready_url=f"{url}/readyz",
                )
            )
        for index in range(plan.workers):
            self.workers.append(
                self._payonce(
                    f"worker{index + 1}",
                    ["worker"],
                    base,
                    ready_line="payonce worker running",
                )
            )
        for child in [*self.apis, *self.workers]:
            child.start()
        for child in [*self.apis, *self.workers]:
            child.wait_ready()

    def _server(self, make: stack_servers.ServerFactory, name: str) -> str:
        child, url = make(self.plan.data_dir / name)
        self.servers.append(child)
        child.start()
        child.wait_ready()
        return url

    def _migrate(self, env: dict[str, str]) -> None:
        done = subprocess.run(  # noqa: S603 (our own `payonce db upgrade`)
            [*PAYONCE, "db", "upgrade"], env=clean_env(**env), capture_output=True, text=True
        )
        if done.returncode != 0:
            raise NotReady(f"migrations failed:\n{done.stdout}{done.stderr}")

    def _payonce(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        *,
        ready_url: str | None = None,
        ready_line: str | None = None,
    ) -> Child:
        """A payonce child process, not started yet."""
        return Child(
            name=name,
            argv=[*PAYONCE, *args],
            env=clean_env(**env),
            log_path=self.plan.data_dir / "logs" / f"{name}.log",
            ready_url=ready_url,
            ready_line=ready_line,
        )

    def stop(self) -> None:
        """Stop payonce's processes first, then the servers they use."""
        for child in reversed(self.children):
            child.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
