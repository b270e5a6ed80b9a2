"""``OpticalByteStore``: LangChain's ``ByteStore`` over an optical-memory store.

Keys and byte values live in the store's tenant (SQLite or Redis, Redis Cluster
included), under a namespace, through the store's byte-value API (``put_blobs``,
``get_blobs``, ``delete_blobs``, ``iter_blob_keys``): no Redis module is needed, and one
tenant never sees another's keys. Useful as the ``byte_store`` of a
``MultiVectorRetriever`` or of ``CacheBackedEmbeddings``, next to the memory's own records.

Example:
    >>> byte_store = OpticalByteStore("sqlite:///memory.db", tenant="acme")  # doctest: +SKIP
    >>> byte_store.mset([("page:1", b"...")])  # doctest: +SKIP
    >>> byte_store.mget(["page:1", "page:2"])  # doctest: +SKIP
    [b'...', None]
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence

from langchain_core.stores import BaseStore

from optical_memory.errors import InvalidRecordError, InvalidSettingError
from optical_memory.store import AsyncStore, Store, open_store

__all__ = ["OpticalByteStore"]


class OpticalByteStore(BaseStore[str, bytes]):
    """A ``BaseStore[str, bytes]`` in one tenant of an optical-memory store.

    Args:
        store: A store URL (``sqlite:///...``, ``redis://...``), a
            :class:`~optical_memory.store.Store`, or an
            :class:`~optical_memory.store.AsyncStore` (then only the ``a``-methods work).
        tenant: The tenant to keep the keys in (default: the store's own).
        namespace: Prefix that keeps these keys apart from other byte values of the
            tenant; keys are given and returned without it.

    A sync store serves the async methods from a worker thread.

    Raises:
        InvalidSettingError: ``store`` is none of the above, or ``namespace`` not a str.
        InvalidStoreURL: A URL of no known scheme.

    The methods raise :class:`~optical_memory.errors.InvalidRecordError` (a ``ValueError``)
    for a key that is not a non-empty str (at most 1,024 characters with the namespace)
    or a value that is not bytes; nothing is written then.
    """

    def __init__(
        self,
        store: Store | AsyncStore | str,
        *,
        tenant: str | None = None,
        namespace: str = "langchain",
    ) -> None:
        if not isinstance(namespace, str):
            raise InvalidSettingError(f"namespace must be a str, got {namespace!r}")
        if isinstance(store, str):
            store = open_store(store, **({} if tenant is None else {"tenant": tenant}))
        elif isinstance(store, (Store, AsyncStore)):
            if tenant is not None and store.tenant != tenant:
                store = store.with_tenant(tenant)
        else:
            raise InvalidSettingError(
                f"store must be a store URL, Store or AsyncStore, got {type(store).__name__}"
            )
        self.store = store
        self.namespace = namespace
        self._prefix = f"{namespace}/" if namespace else ""

    def _sync(self) -> Store:
        if isinstance(self.store, Store):
            return self.store
        raise InvalidSettingError(
            "this OpticalByteStore wraps an AsyncStore: use amget, amset, amdelete, ayield_keys"
        )

    def _key(self, key: str) -> str:
        # checked here too: with a namespace, "" would otherwise pass as "<namespace>/"
        if not isinstance(key, str) or not key:
            raise InvalidRecordError(f"a key must be a non-empty str, got {key!r}")
        return self._prefix + key

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys``, ``None`` where a key is absent."""
        return self._sync().get_blobs([self._key(key) for key in keys])

    def mset(self, key_value_pairs: Sequence[tuple[str, bytes]]) -> None:
        """Set the pairs, all at once (one transaction)."""
        self._sync().put_blobs([(self._key(key), value) for key, value in key_value_pairs])

    def mdelete(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` (absent keys are ignored)."""
        self._sync().delete_blobs([self._key(key) for key in keys])

    def yield_keys(self, *, prefix: str | None = None) -> Iterator[str]:
        """The keys, in ascending order, of those starting with ``prefix`` if given."""
        start = len(self._prefix)
        for key in self._sync().iter_blob_keys(self._prefix + (prefix or "")):
            yield key[start:]

    async def amget(self, keys: Sequence[str]) -> list[bytes | None]:
        """The asyncio twin of :meth:`mget`."""
        stored = [self._key(key) for key in keys]
        if isinstance(self.store, Store):
            return await asyncio.to_thread(self.store.get_blobs, stored)
        return await self.store.get_blobs(stored)

    async def amset(self, key_value_pairs: Sequence[tuple[str, bytes]]) -> None:
        """The asyncio twin of :meth:`mset`."""
        items = [(self._key(key), value) for key, value in key_value_pairs]
        if isinstance(self.store, Store):
            await asyncio.to_thread(self.store.put_blobs, items)
        else:
            await self.store.put_blobs(items)

    async def amdelete(self, keys: Sequence[str]) -> None:
        """The asyncio twin of :meth:`mdelete`."""
        stored = [self._key(key) for key in keys]
        if isinstance(self.store, Store):
            await asyncio.to_thread(self.store.delete_blobs, stored)
        else:
            await self.store.delete_blobs(stored)

    async def ayield_keys(self, *, prefix: str | None = None) -> AsyncIterator[str]:
        """The asyncio twin of :meth:`yield_keys`."""
        start, wanted = len(self._prefix), self._prefix + (prefix or "")
        if isinstance(self.store, Store):
            store = self.store
            keys = await asyncio.to_thread(lambda: list(store.iter_blob_keys(wanted)))
            for key in keys:
                yield key[start:]
        else:
            async for key in self.store.iter_blob_keys(wanted):
                yield key[start:]
