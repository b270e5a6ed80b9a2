"""Byte values by key on every store (SQLite, Redis, Redis Cluster): the semantics written
down in ``optical_memory/store/base.py``, and corrupt values caught on each backend."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from optical_memory.errors import CorruptRecord, InvalidRecordError, RecordTooLarge
from optical_memory.store import RedisStore, SQLiteStore, Store
from optical_memory.store.blobs import KEYS_PER_PAGE, MAX_KEY_CHARS, key_bytes
from optical_memory.store.codec import MAX_BLOB_BYTES
from optical_memory.store.redis_layout import Keys
from tests.integration_tests.store.backends import StoreFactory
from tests.integration_tests.store.records_for_tests import turn
from tests.integration_tests.store.test_redis_store import raw_client

KEYS = ["a", "a/b", "a/c", "ab", "b", "emoji 👩‍👩‍👧", "中文/键", "with:colons{and}*?[", "x" * 1024]


def test_values_round_trip_and_absent_keys_are_none(store: Store) -> None:
    values = {key: key.encode("utf-8") * 3 + bytes(range(256)) for key in KEYS}
    store.put_blobs(values)
    assert store.get_blobs(KEYS) == [values[key] for key in KEYS]
    assert store.get_blobs(["missing", "a", "missing"]) == [None, values["a"], None]
    assert store.get_blobs([]) == []
    store.put_blobs([("a", b""), ("b", bytearray(b"new"))])
    assert store.get_blobs(["a", "b"]) == [b"", b"new"]


def test_keys_list_in_code_point_order_by_prefix(store: Store) -> None:
    store.put_blobs(dict.fromkeys(KEYS, b"v"))
    assert list(store.iter_blob_keys()) == sorted(KEYS)
    assert list(store.iter_blob_keys("a")) == ["a", "a/b", "a/c", "ab"]
    assert list(store.iter_blob_keys("a/")) == ["a/b", "a/c"]
    assert list(store.iter_blob_keys("中文")) == ["中文/键"]
    assert list(store.iter_blob_keys("zzz")) == []
    assert list(store.iter_blob_keys("")) == sorted(KEYS)


def test_listing_pages_through_many_keys(store: Store) -> None:
    keys = [f"k/{i:05d}" for i in range(KEYS_PER_PAGE * 2 + 7)]
    for first in range(0, len(keys), 400):
        store.put_blobs({key: b"" for key in keys[first : first + 400]})
    store.put_blobs({"j": b"", "l": b""})
    assert list(store.iter_blob_keys("k/")) == keys


def test_delete_ignores_absent_keys_and_threads_leave_blobs_alone(store: Store) -> None:
    store.put_blobs({"a": b"1", "b": b"2", "c": b"3"})
    store.delete_blobs(["a", "nope", "c"])
    assert store.get_blobs(["a", "b", "c"]) == [None, b"2", None]
    assert list(store.iter_blob_keys()) == ["b"]
    store.append_turns("b", [turn("hello")])
    store.delete_thread("b")
    assert store.count_turns("b") == 0
    assert store.get_blobs(["b"]) == [b"2"]


def test_tenants_never_see_each_others_blobs(store: Store) -> None:
    other = store.with_tenant("someone-else")
    store.put_blobs({"shared-name": b"mine"})
    assert other.get_blobs(["shared-name"]) == [None]
    assert list(other.iter_blob_keys()) == []
    other.put_blobs({"shared-name": b"theirs"})
    other.delete_blobs(["shared-name"])
    assert store.get_blobs(["shared-name"]) == [b"mine"]


@pytest.mark.parametrize(
    ("items", "error"),
    [
        ({"": b"v"}, InvalidRecordError),
        ({"x" * (MAX_KEY_CHARS + 1): b"v"}, InvalidRecordError),
        ({"k": "text, not bytes"}, InvalidRecordError),
        ([("k", b"v", "extra")], InvalidRecordError),
        ({1: b"v"}, InvalidRecordError),
        ({"k": bytes(MAX_BLOB_BYTES + 1)}, RecordTooLarge),
    ],
)
def test_bad_items_are_refused_and_nothing_is_written(
    store: Store, items: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        store.put_blobs({"good": b"v", **items} if isinstance(items, dict) else items)  # type: ignore[arg-type]
    assert list(store.iter_blob_keys()) == []
    with pytest.raises(InvalidRecordError):
        store.get_blobs("a string is not a list of keys")
    with pytest.raises(InvalidRecordError):
        store.delete_blobs([""])


def test_concurrent_writers_lose_nothing(store_factory: StoreFactory) -> None:
    stores = [store_factory() for _ in range(4)]

    def write(n: int) -> None:
        for i in range(25):
            stores[n].put_blobs({f"w{n}/{i:02d}": f"{n}:{i}".encode(), f"last/{n}": b"x"})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = list(stores[0].iter_blob_keys("w"))
    assert len(keys) == 100
    assert stores[0].get_blobs(keys) == [
        f"{key[1]}:{int(key.split('/')[1])}".encode() for key in keys
    ]


def test_corrupt_sqlite_value_names_its_key(tmp_path: object) -> None:
    path = f"{tmp_path}/blobs.db"
    with SQLiteStore(path) as store:
        store.put_blobs({"doc/1": b"page bytes"})
        with sqlite3.connect(path) as conn:
            (value,) = conn.execute("SELECT value FROM blobs").fetchone()
            conn.execute("UPDATE blobs SET value = ?", (value[:-1] + b"X",))
        with pytest.raises(CorruptRecord, match=r"doc/1.*checksum"):
            store.get_blobs(["doc/1"])


def test_corrupt_redis_value_names_its_key(redis_url: str, unique_tenant: str) -> None:
    store = RedisStore(redis_url, tenant=unique_tenant)
    client = raw_client(redis_url)
    store.put_blobs({"doc/1": b"page bytes", "doc/2": b"fine"})
    client.hset(Keys(unique_tenant).blob_values(), key_bytes("doc/1"), b"OM\x01\x05garbage")
    with pytest.raises(CorruptRecord, match="doc/1"):
        store.get_blobs(["doc/2", "doc/1"])
    assert store.get_blobs(["doc/2"]) == [b"fine"]
    client.close()
    store.close()
