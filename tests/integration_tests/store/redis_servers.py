"""Real ``redis-server`` processes for tests: standalone, ACL, TLS, append-only, 3-node cluster.

Every server runs on a free loopback port in its own directory, can be SIGKILLed and
restarted on the same port and directory (so an append-only file survives), and is stopped
by :meth:`RedisServer.stop` or :meth:`RedisCluster.stop`. Nothing here touches a server on
6379. When ``redis-server`` is not installed, :func:`require_redis` skips (fails in CI).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import redis

from tests.conftest import missing_component

__all__ = [
    "RedisCluster",
    "RedisServer",
    "TLSFiles",
    "make_tls_files",
    "require_redis",
]

HOST = "127.0.0.1"
START_TIMEOUT = 10.0


def require_redis() -> None:
    """Skip (or fail in CI) when ``redis-server`` or ``redis-cli`` is missing."""
    for tool in ("redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            missing_component(f"{tool} is not installed (apt install redis-server)")


def free_port(*, with_bus: bool = False) -> int:
    """A free loopback port; ``with_bus`` also needs port + 10000 free (the cluster bus)."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if not with_bus:
            return port
        if port + 10000 < 65536 and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port pair found for a cluster node")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class TLSFiles:
    """A CA and a server certificate for 127.0.0.1, made by openssl."""

    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path) -> TLSFiles:
    """Generate a throwaway CA and a server certificate signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (
        directory / name for name in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt")
    )
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    steps = [
        # EC keys: generated in milliseconds, where RSA takes a second.
        ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out",
         ca_key],
        ["req", "-x509", "-new", "-key", ca_key, "-days", "2", "-subj", "/CN=om-test-ca",
         "-out", ca],
        ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out",
         key],
        ["req", "-new", "-key", key, "-subj", "/CN=127.0.0.1", "-out", csr],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days",
         "2", "-extfile", ext, "-out", cert],
    ]  # fmt: skip
    for step in steps:
        subprocess.run(["openssl", *map(str, step)], check=True, capture_output=True, timeout=60)
    return TLSFiles(ca=ca, cert=cert, key=key)


class RedisServer:
    """One ``redis-server`` process on a fixed port and directory.

    Args:
        directory: Its working directory (data files, log, nodes.conf).
        appendonly: Turn on the append-only file with ``appendfsync always`` (fault tests).
        user, password: Create an ACL user with that password and turn ``default`` off.
        tls: Serve TLS only (``tls-port``; the plain port is off).
        cluster: Start in cluster mode (see :class:`RedisCluster`).
    """

    def __init__(
        self,
        directory: Path,
        *,
        appendonly: bool = False,
        user: str | None = None,
        password: str | None = None,
        tls: TLSFiles | None = None,
        cluster: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        require_redis()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port(with_bus=cluster)
        self.appendonly = appendonly
        self.user = user
        self.password = password
        self.tls = tls
        self.cluster = cluster
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None

    def args(self) -> list[str]:
        args = [
            "redis-server",
            "--bind", HOST,
            "--dir", str(self.directory),
            "--logfile", "redis.log",
            "--save", "",
            "--daemonize", "no",
            "--appendonly", "yes" if self.appendonly else "no",
        ]  # fmt: skip
        if self.appendonly:
            args += ["--appendfsync", "always"]
        if self.tls is None:
            args += ["--port", str(self.port)]
        else:
            args += [
                "--port", "0",
                "--tls-port", str(self.port),
                "--tls-cert-file", str(self.tls.cert),
                "--tls-key-file", str(self.tls.key),
                "--tls-ca-cert-file", str(self.tls.ca),
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        if self.password is not None:
            user = self.user or "default"
            args += ["--user", user, "reset", "on", f">{self.password}", "~*", "&*", "+@all"]
            if user != "default":
                args += ["--user", "default", "off"]
        if self.cluster:
            args += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000",
            ]  # fmt: skip
        return args + self.extra_args

    @property
    def url(self) -> str:
        """A ``redis://`` (or ``rediss://``) URL of database 0, with the credentials."""
        scheme = "redis" if self.tls is None else "rediss"
        auth = ""
        if self.password is not None:
            auth = f"{quote(self.user or '', safe='')}:{quote(self.password, safe='')}@"
        return f"{scheme}://{auth}{HOST}:{self.port}/0"

    def client(self) -> redis.Redis:
        """A plain redis-py client of this server (for raw reads and writes in tests)."""
        return redis.Redis(
            host=HOST,
            port=self.port,
            username=self.user if self.password is not None else None,
            password=self.password,
            ssl=self.tls is not None,
            ssl_ca_certs=None if self.tls is None else str(self.tls.ca),
            socket_timeout=5,
        )

    def start(self) -> RedisServer:
        """Start the process (same port and directory as before) and wait until it answers."""
        if self.process is not None and self.process.poll() is None:
            return self
        self.process = subprocess.Popen(
            self.args(),
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        client = self.client()
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited at start:\n{self.log_tail()}")
                try:
                    # A server replaying its append-only file answers LOADING: wait for it.
                    if client.ping():
                        return self
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer:\n{self.log_tail()}")
                time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the process: no shutdown, no final save, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> RedisServer:
        """Kill, then start again on the same port and directory."""
        self.kill()
        return self.start()

    def stop(self) -> None:
        """Terminate the process (killed if it lingers)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def log_tail(self, lines: int = 20) -> str:
        log = self.directory / "redis.log"
        if not log.exists():
            return "(no log)"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


class RedisCluster:
    """A Redis Cluster of ``size`` primaries and no replicas, each a :class:`RedisServer`."""

    def __init__(self, directory: Path, size: int = 3) -> None:
        require_redis()
        self.nodes = [RedisServer(directory / f"node{i}", cluster=True) for i in range(size)]

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:<port of the first node>`` (the others are discovered)."""
        return f"redis+cluster://{HOST}:{self.nodes[0].port}"

    def start(self) -> RedisCluster:
        """Start every node, assign the slots and wait for ``cluster_state:ok`` everywhere."""
        try:
            for node in self.nodes:
                node.start()
            subprocess.run(
                [
                    "redis-cli",
                    "--cluster",
                    "create",
                    *(f"{HOST}:{node.port}" for node in self.nodes),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            self._wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ok(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            states = []
            for node in self.nodes:
                with contextlib.closing(node.client()) as client:
                    info = client.execute_command("CLUSTER", "INFO")
                    text = info.decode() if isinstance(info, bytes) else str(info)
                    states.append("cluster_state:ok" in text)
            if all(states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("cluster did not reach cluster_state:ok")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()
