"""Store fixtures.

Redis servers (session-scoped, real ``redis-server`` processes on free loopback ports):

- ``redis_url``: a standalone server, ``redis://127.0.0.1:<port>/0``.
- ``redis_cluster_url``: a 3-primary cluster, ``redis+cluster://127.0.0.1:<port>`` (one seed
  node; the client discovers the others).

Both skip outside CI (fail in CI) when ``redis-server`` is not installed. Tests isolate
themselves with a unique tenant (``unique_tenant``), never by flushing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.integration_tests.store.redis_servers import RedisCluster, RedisServer

# ---- Redis servers ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The standalone server behind ``redis_url`` (for raw reads and writes)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:<port>/0`` of a standalone redis-server."""
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """The 3-node cluster behind ``redis_cluster_url``."""
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: RedisCluster) -> str:
    """``redis+cluster://127.0.0.1:<port>`` of a 3-primary Redis Cluster."""
    return redis_cluster.url


@pytest.fixture
def unique_tenant() -> str:
    """A tenant name no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


# ---- end of Redis servers ---------------------------------------------------------------

# ---- one store per backend, for the conformance suite (see backends.py) ------------------

from tests.integration_tests.store.backends import (  # noqa: E402
    async_store,
    async_store_factory,
    store,
    store_factory,
)

__all__ = ["async_store", "async_store_factory", "store", "store_factory"]
