"""What is particular to the Redis stores: key layout, escaping, URLs, credentials, TLS,
outages, corrupt values. The behaviour both backends share is in ``test_conformance.py``."""

from __future__ import annotations

import dataclasses
import inspect
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
import redis.cluster
from redis.crc import key_slot

from optical_memory.errors import (
    CorruptRecord,
    InvalidStoreURL,
    NotFound,
    StoreUnavailable,
)
from optical_memory.records import Segment
from optical_memory.store.base import AsyncStore, Store
from optical_memory.store.redis import AsyncRedisStore, RedisStore
from optical_memory.store.redis_connection import parse_redis_url, redact_url
from optical_memory.store.redis_layout import Keys
from tests.integration_tests.store.records_for_tests import page, segment, turn, vision_tokens
from tests.integration_tests.store.redis_servers import (
    RedisCluster,
    RedisServer,
    free_port,
    make_tls_files,
)

PASSWORD = "pa:ss/w@rd?%-s3cret"
SECRET = "s3cret"  # in every form of the password, raw or percent-escaped
QUOTED = quote(PASSWORD, safe="")
NASTY_NAMES = [
    "plain",
    "{braces}",
    "}{",
    "a:b:c",
    "*",
    "?",
    "[a-z]",
    "x\\*",
    "%2A",
    "🦜 emoji",
    "שלום עולם",  # right-to-left
    "مرحبا",
    "tab\tnew\nline",
    "\udcff lone surrogate",
]
FAST = {"retries": 2, "backoff_base": 0.01, "backoff_cap": 0.05, "socket_connect_timeout": 0.5}


@pytest.fixture(params=["standalone", "cluster"])
def any_url(request: pytest.FixtureRequest) -> str:
    fixture = "redis_url" if request.param == "standalone" else "redis_cluster_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("acl"), user="om-app", password=PASSWORD)
    yield server.start()
    server.stop()


def raw_client(url: str) -> redis.Redis | redis.cluster.RedisCluster:
    target = parse_redis_url(url)
    if target.cluster:
        return redis.cluster.RedisCluster.from_url(target.client_url)
    return redis.Redis.from_url(target.client_url)


def test_twins_have_the_same_signatures() -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in inspect.getmembers(cls)
            if not name.startswith("_") and callable(member)
        }

    sync, asynchronous = public(RedisStore), public(AsyncRedisStore)
    assert sync.pop("close") == asynchronous.pop("aclose")
    assert set(sync) == set(asynchronous)
    for name, signature in sync.items():
        other = asynchronous[name]
        assert str(signature).replace("RedisStore", "") == str(other).replace(
            "AsyncRedisStore", ""
        ).replace("AsyncIterator", "Iterator"), name
        method = getattr(AsyncRedisStore, name)
        if name.startswith("iter_"):
            assert inspect.isasyncgenfunction(method), name
        else:
            assert inspect.iscoroutinefunction(method) == (name != "with_tenant"), name
    assert inspect.signature(RedisStore.__init__) == inspect.signature(AsyncRedisStore.__init__)


def test_both_twins_satisfy_the_protocols(redis_url: str) -> None:
    store = RedisStore(redis_url)
    assert isinstance(store, Store)
    assert isinstance(store.with_tenant("other"), Store)
    store.close()
    assert isinstance(AsyncRedisStore(redis_url), AsyncStore)


def test_key_layout() -> None:
    keys = Keys("acme")
    assert keys.turns("t1") == "om:acme:{t1}:turns"
    assert keys.segment("t1", "s:1") == "om:acme:{t1}:seg:s%3A1"
    assert keys.page("t1", "p") == "om:acme:{t1}:page:p"
    assert keys.vision("t1", "p") == "om:acme:{t1}:vt:p"
    assert keys.tenant_pattern() == "om:acme:{*"
    nasty = Keys("a{b}:*")
    assert nasty.turns("{x}") == "om:a%7Bb%7D%3A%2A:{%7Bx%7D}:turns"
    assert nasty.record_thread(nasty.page("{x}", "p")) == "{x}"
    assert nasty.record_thread(nasty.segments("{x}")) is None  # an index, not a record
    assert nasty.record_thread(keys.turns("x")) is None  # another tenant


@pytest.mark.parametrize("name", NASTY_NAMES)
def test_every_key_of_a_thread_shares_one_slot(name: str) -> None:
    keys = Keys(name)
    all_keys = [
        keys.turns(name),
        keys.turn_index(name),
        keys.text(name, 7),
        keys.segments(name),
        keys.segment(name, name),
        keys.page(name, name),
        keys.vision(name, name),
    ]
    for key in all_keys:
        assert key.count("{") == 1 and key.count("}") == 1
        assert not set(key) & set("*?[]\\ \t\n"), key
    assert {key_slot(k.encode()) for k in all_keys} == {key_slot(keys.turns(name).encode())}


def test_server_agrees_on_the_slots(redis_cluster_url: str, unique_tenant: str) -> None:
    store = RedisStore(redis_cluster_url, tenant=unique_tenant)
    client = raw_client(redis_cluster_url)
    threads = [f"thread-{i}" for i in range(12)]
    for thread in threads:
        store.append_turns(thread, [turn("hi")])
        record, pages = segment(thread)
        store.put_segment(record, pages)
        store.put_vision_tokens(thread, pages[0].id, vision_tokens())
    keys = list(client.scan_iter(match=Keys(unique_tenant).tenant_pattern()))
    assert len(keys) == 12 * 10  # turns, turnidx, text:0, segs, segpages, segver, seg, 2 pages, vt
    slots: dict[str, set[int]] = {}
    for key in keys:
        thread = key.decode().split("{")[1].split("}")[0]
        slots.setdefault(thread, set()).add(int(client.execute_command("CLUSTER KEYSLOT", key)))
    assert all(len(s) == 1 for s in slots.values())
    # The threads spread over the primaries, and listing found them all.
    nodes = {client.get_node_from_key(f"x{{{t}}}").name for t in threads}
    assert len(nodes) > 1
    assert store.list_threads() == sorted(threads)
    client.close()
    store.close()


def test_names_are_escaped_and_tenants_isolated(any_url: str, unique_tenant: str) -> None:
    base = RedisStore(any_url, tenant=unique_tenant)
    stores = {name: base.with_tenant(unique_tenant + name) for name in NASTY_NAMES}
    # A tenant whose name is a glob of the others' must see none of their threads.
    stores["*glob"] = base.with_tenant(unique_tenant + "[a-z]*")
    for name, store in stores.items():
        store.append_turns(name, [turn(f"in {name}")])
        store.append_turns(name + "{}", [turn("second")])
    for name, store in stores.items():
        assert store.list_threads() == sorted([name, name + "{}"]), name
        assert [t.message["content"] for t in store.get_turns(name)] == [f"in {name}"]
    client = raw_client(any_url)
    for key in client.scan_iter(match=f"om:{unique_tenant}*"):
        text = key.decode("ascii")  # escaped: plain ASCII only
        assert text.count("{") == 1 and text.count("}") == 1
    for store in stores.values():
        store.delete_thread(store.list_threads()[0])
    base.close()
    client.close()


def test_repr_and_errors_hide_the_password(acl_server: RedisServer, unique_tenant: str) -> None:
    store = RedisStore(acl_server.url, tenant=unique_tenant)
    assert SECRET not in repr(store) and "***" in repr(store)
    assert store.append_turns("t", [turn("hi")]) == 1  # AUTH as the ACL user works
    store.close()

    wrong = acl_server.url.replace("pa%3Ass", "wrong")
    assert wrong != acl_server.url
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="refused the credentials") as info:
        RedisStore(wrong, tenant=unique_tenant, retries=5).count_turns("t")
    assert time.monotonic() - started < 1.0  # a refused password is not retried
    assert_no_secret(info.value, SECRET)

    # Right password, but as the disabled default user.
    with pytest.raises(StoreUnavailable) as info:
        RedisStore(f"redis://:{QUOTED}@127.0.0.1:{acl_server.port}/0").count_turns("t")
    assert_no_secret(info.value, SECRET)


def test_unreachable_server_error_hides_the_password() -> None:
    url = f"redis://om-app:{QUOTED}@127.0.0.1:{free_port()}/0"
    store = RedisStore(url, **FAST)  # type: ignore[arg-type]
    assert SECRET not in repr(store)
    with pytest.raises(StoreUnavailable) as info:
        store.append_turns("t", [turn("hi")])
    assert_no_secret(info.value, SECRET)


def assert_no_secret(error: BaseException, secret: str) -> None:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    for part in (str(error), repr(error), text, repr(error.__cause__)):
        assert secret not in part


@pytest.mark.parametrize(
    ("url", "cluster", "tls"),
    [
        ("redis://localhost:6379/0", False, False),
        ("redis://u:p@h:1/2?socket_timeout=1.5", False, False),
        ("rediss://h:6380/0?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required", False, True),
        ("unix:///run/redis.sock?db=1", False, False),
        ("redis+cluster://h:7000", True, False),
        ("rediss+cluster://u:p@h:7000?ssl_ca_certs=/ca.pem", True, True),
        ("redis://h:7000?cluster=true", True, False),
        ("redis://h:7000/0?cluster=false", False, False),
    ],
)
def test_url_forms(url: str, cluster: bool, tls: bool) -> None:
    target = parse_redis_url(url)
    assert (target.cluster, target.tls) == (cluster, tls)
    assert "cluster" not in target.client_url
    assert target.client_url.startswith(("redis://", "rediss://", "unix://"))


@pytest.mark.parametrize(
    "url",
    [
        "http://h:1",
        "redis+sentinel://h:1",
        "redis://",
        "redis://h:notaport",
        "redis://h:99999",
        "redis://h:1/x",
        "redis://h:1?bogus=1",
        "redis://h:1?cluster=maybe",
        "redis+cluster://h:1/3",
        "unix+cluster:///s.sock",
        "unix://",
    ],
)
def test_malformed_urls(url: str) -> None:
    with pytest.raises(InvalidStoreURL):
        RedisStore(url)
    with pytest.raises(InvalidStoreURL):
        AsyncRedisStore(url)


def test_malformed_url_error_hides_the_password() -> None:
    with pytest.raises(InvalidStoreURL) as info:
        RedisStore(f"redis://u:{PASSWORD}@h:notaport/0")
    assert_no_secret(info.value, SECRET)
    assert redact_url("redis://u:secret@h:1/0?ssl_password=x2") == (
        "redis://u:***@h:1/0?ssl_password=***"
    )
    assert redact_url("redis://:secret@h") == "redis://:***@h"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"


def test_cluster_query_flag_connects_to_the_cluster(
    redis_cluster: RedisCluster, unique_tenant: str
) -> None:
    url = f"redis://127.0.0.1:{redis_cluster.nodes[1].port}?cluster=true"
    store = RedisStore(url, tenant=unique_tenant)
    for i in range(10):
        store.append_turns(f"t{i}", [turn("x")])
    assert len(store.list_threads()) == 10
    store.close()


def test_tls(tmp_path: Path, unique_tenant: str) -> None:
    files = make_tls_files(tmp_path / "tls")
    server = RedisServer(tmp_path / "redis", tls=files)
    try:
        server.start()
    except RuntimeError as exc:
        if "tls" in str(exc).lower():
            pytest.skip(f"this redis-server build has no TLS: {exc}")
        raise
    try:
        url = f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={files.ca}"
        store = RedisStore(url, tenant=unique_tenant)
        assert store.append_turns("t", [turn("over TLS")]) == 1
        assert store.get_turns("t")[0].message["content"] == "over TLS"
        store.close()
        # The server's certificate is checked: without the CA the handshake fails.
        untrusted = RedisStore(f"rediss://127.0.0.1:{server.port}/0", **FAST)  # type: ignore[arg-type]
        with pytest.raises(StoreUnavailable):
            untrusted.count_turns("t")
        # And a plain client cannot talk to a TLS port.
        with pytest.raises(StoreUnavailable):
            RedisStore(f"redis://127.0.0.1:{server.port}/0", **FAST).count_turns("t")  # type: ignore[arg-type]
    finally:
        server.stop()


def test_server_down_raises_store_unavailable_fast() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    store = RedisStore(url, **FAST)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="unreachable after 3 attempts"):
        store.get_turns("t")
    assert time.monotonic() - started < 2.0
    with pytest.raises(StoreUnavailable):
        RedisStore(f"redis+cluster://127.0.0.1:{free_port()}", **FAST)  # type: ignore[arg-type]


async def test_server_down_async() -> None:
    store = AsyncRedisStore(f"redis://127.0.0.1:{free_port()}/0", **FAST)  # type: ignore[arg-type]
    with pytest.raises(StoreUnavailable):
        await store.append_turns("t", [turn("x")])
    await store.aclose()
    cluster = AsyncRedisStore(f"redis+cluster://127.0.0.1:{free_port()}", **FAST)  # type: ignore[arg-type]
    with pytest.raises(StoreUnavailable):
        await cluster.list_threads()
    await cluster.aclose()


def test_retry_rides_out_a_restart(tmp_path: Path, unique_tenant: str) -> None:
    server = RedisServer(tmp_path, appendonly=True).start()
    store = RedisStore(server.url, tenant=unique_tenant, retries=30, backoff_base=0.02,
                       backoff_cap=0.1, socket_connect_timeout=0.5)  # fmt: skip
    try:
        store.append_turns("t", [turn("before")])
        server.kill()
        restarter = threading.Timer(0.4, server.start)
        restarter.start()
        # Issued while the server is down: retried with backoff until it is back.
        assert store.append_turns("t", [turn("during")]) == 1
        restarter.join()
        assert [t.message["content"] for t in store.get_turns("t")] == ["before", "during"]
    finally:
        store.close()
        server.stop()


@pytest.mark.parametrize("what", ["turn", "segment", "page", "tokens"])
def test_corrupt_value_names_its_key(any_url: str, unique_tenant: str, what: str) -> None:
    store = RedisStore(any_url, tenant=unique_tenant)
    client = raw_client(any_url)
    keys = Keys(unique_tenant)
    store.append_turns("t", [turn("a"), turn("b")])
    record, pages = segment("t")
    store.put_segment(record, pages)
    store.put_vision_tokens("t", pages[0].id, vision_tokens())
    if what == "turn":
        value = client.lindex(keys.turns("t"), 1)
        client.lset(keys.turns("t"), 1, value[:-1] + b"X")  # type: ignore[index]
        expected, read = keys.turns("t") + "[1]", lambda: store.get_turns("t")
    elif what == "segment":
        client.set(keys.segment("t", record.id), b"not a record")
        expected, read = keys.segment("t", record.id), lambda: store.list_segments("t")
    elif what == "page":
        value = client.get(keys.page("t", pages[1].id))
        client.set(keys.page("t", pages[1].id), value[:40])  # type: ignore[index]
        expected, read = keys.page("t", pages[1].id), lambda: store.get_pages("t", record.id)
    else:
        client.hset(keys.vision("t", pages[0].id), "model-a", b"OM\x01\x04garbage")
        expected = keys.vision("t", pages[0].id)
        read = lambda: store.get_vision_tokens("t", pages[0].id, "model-a")  # noqa: E731
    with pytest.raises(CorruptRecord, match=expected.replace("[", r"\[").replace("{", r"\{")):
        read()
    client.close()
    store.close()


def test_retention_expires_records_and_prunes_the_index(any_url: str, unique_tenant: str) -> None:
    store = RedisStore(any_url, tenant=unique_tenant, retention={"tiny": 0.3})
    client = raw_client(any_url)
    keys = Keys(unique_tenant)
    short, short_pages = segment("t", tier="tiny")
    kept, kept_pages = segment("t", tier="small", created_at=short.created_at + 1)
    store.put_segment(short, short_pages)
    store.put_segment(kept, kept_pages)
    store.put_vision_tokens("t", short_pages[0].id, vision_tokens())
    for key in (keys.segment("t", short.id), keys.page("t", short_pages[1].id)):
        assert 0 < int(client.pttl(key)) <= 300
    assert 0 < int(client.pttl(keys.vision("t", short_pages[0].id))) <= 300
    assert int(client.pttl(keys.page("t", kept_pages[0].id))) == -1
    assert store.list_segments("t") == [short, kept]
    time.sleep(0.45)
    assert store.list_segments("t") == [kept]
    assert client.zcard(keys.segments("t")) == 1  # the expired entry left the index
    with pytest.raises(NotFound):
        store.get_segment("t", short.id)
    # Decaying the kept segment to the short-lived tier gives its keys a TTL too.
    decayed = type(kept)(**{**kept.__dict__, "tier": "tiny"})
    store.replace_segment(decayed, kept_pages)
    assert 0 < int(client.pttl(keys.page("t", kept_pages[0].id))) <= 300
    client.close()
    store.close()


def test_concurrent_appends_neither_lose_nor_duplicate(any_url: str, unique_tenant: str) -> None:
    store = RedisStore(any_url, tenant=unique_tenant)
    batches = [[turn(f"w{w}-{i}") for i in range(3)] for w in range(8)]
    shared = turn("everyone sends this one")
    errors: list[BaseException] = []

    def writer(batch: list) -> None:  # type: ignore[type-arg]
        try:
            for item in batch:
                store.append_turns("t", [shared, item])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = [t.id for t in store.get_turns("t")]
    assert len(ids) == len(set(ids)) == 1 + 8 * 3
    for batch in batches:  # each writer's turns keep their order
        positions = [ids.index(t.id) for t in batch]
        assert positions == sorted(positions)
    store.close()


def test_with_tenant_shares_the_pool(redis_url: str, unique_tenant: str) -> None:
    store = RedisStore(redis_url, tenant=unique_tenant)
    other = store.with_tenant(unique_tenant + "-b")
    other.append_turns("t", [turn("b")])
    assert store.count_turns("t") == 0 and other.count_turns("t") == 1
    other.close()  # a view does not close the shared pool
    assert store.count_turns("t") == 0
    store.close()


async def test_async_main_behaviour(any_url: str, unique_tenant: str) -> None:
    store = AsyncRedisStore(any_url, tenant=unique_tenant, retention={"tiny": 60})
    name = "{🦜}:*"
    turns = [turn(f"m{i}") for i in range(4)]
    assert await store.append_turns(name, turns) == 4
    assert await store.append_turns(name, turns[2:]) == 0
    assert await store.get_turns(name, -2) == turns[-2:]
    assert await store.get_turn(name, turns[1].id) == turns[1]
    record, pages = segment(name, tier="tiny")
    await store.put_segment(record, pages)
    await store.put_vision_tokens(name, pages[0].id, vision_tokens())
    assert await store.get_vision_tokens(name, pages[0].id, "model-a") == vision_tokens()
    assert await store.list_segments(name) == [record]
    assert await store.list_threads() == [name]
    client = raw_client(any_url)
    client.set(Keys(unique_tenant).page(name, pages[0].id), b"junk")
    with pytest.raises(CorruptRecord, match="page:"):
        await store.get_page(name, pages[0].id)
    await store.delete_thread(name)
    assert await store.list_threads() == []
    assert not list(client.scan_iter(match=f"om:{unique_tenant}:*"))
    client.close()
    await store.aclose()


async def test_async_credentials(acl_server: RedisServer, unique_tenant: str) -> None:
    store = AsyncRedisStore(acl_server.url, tenant=unique_tenant)
    assert SECRET not in repr(store)
    assert await store.append_turns("t", [turn("x")]) == 1
    await store.aclose()
    wrong = AsyncRedisStore(acl_server.url.replace("pa%3Ass", "nope"), tenant=unique_tenant)
    with pytest.raises(StoreUnavailable) as info:
        await wrong.count_turns("t")
    assert_no_secret(info.value, SECRET)
    await wrong.aclose()


@pytest.mark.parametrize("listing", ["missing", "garbage", "present"])
def test_a_shared_page_survives_whatever_the_page_listing_says(
    redis_url: str, unique_tenant: str, listing: str
) -> None:
    """Replacing a segment deletes the pages it drops unless another segment lists them,
    also when that segment's entry in ``segpages`` is absent (written by an older release)
    or unreadable: its record is read instead."""
    store = RedisStore(redis_url, tenant=unique_tenant)
    client = raw_client(redis_url)
    keys = Keys(unique_tenant)
    shared, own, fresh = page(), page(), page()
    first = Segment("t", turn_ids=["a"], tier="small", page_ids=[shared.id, own.id])
    second = Segment("t", turn_ids=["b"], tier="small", page_ids=[shared.id])
    store.put_segment(first, [shared, own])
    store.put_segment(second, [shared])
    if listing == "missing":
        client.hdel(keys.segment_pages("t"), second.id)
    elif listing == "garbage":
        client.hset(keys.segment_pages("t"), second.id, b"\xff not json")
    store.replace_segment(dataclasses.replace(first, page_ids=[fresh.id]), [fresh])
    assert store.get_pages("t", second.id) == [shared]
    assert not client.exists(keys.page("t", own.id))  # dropped and listed by nobody else
    store.delete_segment("t", second.id)
    assert not client.exists(keys.page("t", shared.id))
    assert client.hkeys(keys.segment_pages("t")) == [first.id.encode()]
    client.close()
    store.close()


def test_a_cached_listing_follows_every_writer(redis_url: str, unique_tenant: str) -> None:
    """Each store keeps the last listing under the thread's ``segver`` token; a write by
    any other store object (another process) changes the token, so no stale listing is
    ever returned, and writes that use the cached listing still keep shared pages."""
    a = RedisStore(redis_url, tenant=unique_tenant)
    b = RedisStore(redis_url, tenant=unique_tenant)
    shared, first_own, fresh = page(), page(), page()
    first = Segment("t", turn_ids=["a"], tier="small", page_ids=[shared.id, first_own.id])
    a.put_segment(first, [shared, first_own])
    assert a.list_segments("t") == [first]  # now cached in a
    second = Segment("t", turn_ids=["b"], tier="small", page_ids=[shared.id], created_at=2e9)
    b.put_segment(second, [shared])
    assert a.list_segments("t") == [first, second]  # b's write changed the token
    a.replace_segment(dataclasses.replace(first, page_ids=[fresh.id]), [fresh])
    assert b.get_pages("t", second.id) == [shared]  # still listed by second: kept
    assert [s.page_ids for s in b.list_segments("t")] == [(fresh.id,), (shared.id,)]
    a.delete_segment("t", second.id)
    assert [s.id for s in b.list_segments("t")] == [first.id]
    assert [s.id for s in a.list_segments("t")] == [first.id]
    b.delete_thread("t")
    assert a.list_segments("t") == []
    a.close()
    b.close()
