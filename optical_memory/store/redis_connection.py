"""How the Redis stores connect: URL parsing and redaction, and the retry policy.

No IO here either; :mod:`optical_memory.store.redis_layout` plans the commands and
:mod:`optical_memory.store.redis` sends them.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
import redis.asyncio.retry
import redis.exceptions
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from optical_memory.errors import InvalidSettingError, InvalidStoreURL

__all__ = [
    "DEFAULT_URL",
    "MAX_WATCH_CONFLICTS",
    "TRANSIENT_ERRORS",
    "RedisTarget",
    "RetryPolicy",
    "cluster_unreachable_is_a_connection_error",
    "is_retryable",
    "parse_redis_url",
    "redact_url",
    "reraise_lost_connection",
]

DEFAULT_URL = "redis://localhost:6379/0"


# Query parameters a store URL may carry (redis-py's names); anything else is a typo.
_QUERY_PARAMS = frozenset(
    {
        "db",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "health_check_interval",
        "max_connections",
        "client_name",
        "protocol",
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_password",
        "ssl_check_hostname",
        "ssl_min_version",
    }
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# Errors worth another attempt: the server or network blinked, or the cluster is resharding.
_TRANSIENT_REDIS: tuple[type[redis.exceptions.RedisError], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
)
# socket errors that escape redis-py's own wrapping (sync client only).
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (*_TRANSIENT_REDIS, OSError)


@dataclass(frozen=True)
class RedisTarget:
    """A parsed store URL: which client to build and with what, plus the redacted form."""

    cluster: bool
    client_url: str  # holds the credentials: handed to redis-py, never shown
    redacted: str
    tls: bool

    def __repr__(self) -> str:
        return f"RedisTarget(cluster={self.cluster}, url={self.redacted!r})"


def redact_url(url: str) -> str:
    """The URL with its password (and any ``*pass*`` query value) replaced by ``***``.

    Works on malformed URLs too, so an error about a bad URL can still show it.

    Example:
        >>> redact_url("rediss://app:s3cret@db:6380/0")
        'rediss://app:***@db:6380/0'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***" if "@" in url else url
    # The last "@" ends the userinfo: a password may hold "/", "?" or "@" unescaped.
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _ = rest[:at].partition(":")
        rest = (f"{user}:***@" if colon else f"{user}@") + rest[at + 1 :]
    rest = re.sub(r"(?i)([?&][^=&#]*pass[^=&#]*=)[^&#]*", r"\1***", rest)
    return f"{scheme}://{rest}"


def _flag(value: str, what: str, redacted: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidStoreURL(f"{what}={value!r} is not a boolean in store URL {redacted}")


def parse_redis_url(url: str) -> RedisTarget:
    """Parse a store URL.

    Accepted forms (credentials and TLS options as redis-py takes them)::

        redis://[[user]:password@]host[:port][/db][?option=value...]
        rediss://...                      TLS (e.g. ?ssl_ca_certs=/path/ca.pem)
        unix://[[user]:password@]/path/to/redis.sock[?db=0]
        redis+cluster://host:port         Redis Cluster, seeded by any node
        rediss+cluster://host:port        Redis Cluster over TLS
        redis://host:port?cluster=true    the same as redis+cluster://

    Raises:
        InvalidStoreURL: Unknown scheme or option, bad port or db, a cluster db other than 0.
    """
    if not isinstance(url, str):
        raise InvalidStoreURL(f"a Redis store URL must be a str, got {type(url).__name__}")
    redacted = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        # urlsplit's messages may quote the netloc, so only the redacted URL is shown.
        raise InvalidStoreURL(f"malformed store URL {redacted}") from None
    scheme = parts.scheme.lower()
    cluster = scheme.endswith("+cluster")
    base_scheme = scheme.removesuffix("+cluster")
    if base_scheme not in ("redis", "rediss", "unix") or (cluster and base_scheme == "unix"):
        raise InvalidStoreURL(
            f"unknown scheme {parts.scheme!r} in store URL {redacted}; use redis://, rediss://, "
            "unix://, redis+cluster:// or rediss+cluster://"
        )
    if base_scheme != "unix" and not parts.hostname:
        raise InvalidStoreURL(f"store URL {redacted} names no host")
    if base_scheme == "unix" and not parts.path:
        raise InvalidStoreURL(f"store URL {redacted} names no socket path")
    query = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "cluster":
            cluster = cluster or _flag(value, name, redacted)
            continue
        if name not in _QUERY_PARAMS:
            raise InvalidStoreURL(
                f"unknown option {name!r} in store URL {redacted}; known: "
                f"cluster, {', '.join(sorted(_QUERY_PARAMS))}"
            )
        query.append((name, value))
    db = dict(query).get("db")
    path = parts.path.strip("/") if base_scheme != "unix" else ""
    if db is None and path:
        db = path
    if db is not None and not db.isdigit():
        raise InvalidStoreURL(f"database {db!r} is not a number in store URL {redacted}")
    if cluster and db not in (None, "0"):
        raise InvalidStoreURL(f"Redis Cluster has only database 0; store URL {redacted}")
    if cluster and base_scheme == "unix":
        raise InvalidStoreURL(f"Redis Cluster needs host:port; store URL {redacted}")
    client_path = parts.path if base_scheme == "unix" else ("" if cluster else parts.path)
    # Built by hand: urlunsplit drops the "//" of "unix:///path" when the host is empty.
    client_url = f"{base_scheme}://{parts.netloc}{client_path}"
    if query:
        client_url += "?" + urlencode(query)
    return RedisTarget(
        cluster=cluster, client_url=client_url, redacted=redacted, tls=base_scheme == "rediss"
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How idempotent operations are retried on connection errors and timeouts.

    ``retries`` more attempts after the first, waiting ``base * 2**n`` seconds (capped at
    ``cap``) between them; then the store raises ``StoreUnavailable``.
    """

    retries: int = 3
    base: float = 0.05
    cap: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise InvalidSettingError(f"retries must be an int >= 0, got {self.retries!r}")
        for name in ("base", "cap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InvalidSettingError(f"backoff {name} must be seconds >= 0, got {value!r}")

    def sync(self) -> Retry:
        return Retry(
            ExponentialBackoff(cap=self.cap, base=self.base), self.retries, TRANSIENT_ERRORS
        )

    def asyncio(self) -> redis.asyncio.retry.Retry:
        return redis.asyncio.retry.Retry(
            ExponentialBackoff(cap=self.cap, base=self.base), self.retries, _TRANSIENT_REDIS
        )


def is_retryable(error: Exception) -> bool:
    """Whether an attempt may be repeated (a refused password will be refused again)."""
    return not isinstance(
        error, (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)
    )


# Optimistic appends retry on a WATCH conflict; each conflict means another writer succeeded.
MAX_WATCH_CONFLICTS = 1000


def reraise_lost_connection(error: redis.exceptions.WatchError) -> None:
    """Re-raise the connection error redis-py reports as a ``WatchError`` while watching.

    A genuine conflict returns, and the caller re-reads and tries again; a dropped
    connection must go to the retry policy instead, or an outage would spin.
    """
    cause = error.__context__
    if isinstance(cause, TRANSIENT_ERRORS):
        raise cause


@contextlib.contextmanager
def cluster_unreachable_is_a_connection_error() -> Iterator[None]:
    """Make "no cluster node reachable" retryable like any other connection error.

    redis-py raises it as ``RedisClusterException``, which is not even a ``RedisError``.
    """
    try:
        yield
    except redis.exceptions.RedisClusterException as exc:
        if "cannot be connected" not in str(exc):
            raise
        raise redis.exceptions.ConnectionError(str(exc)) from exc
