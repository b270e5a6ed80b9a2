"""The Ray Data pipeline on a local Ray instance (2 CPUs) with a Redis store gives the
same pages, images and texts as the single-process path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from optical_memory.documents import DocumentPageStore, ingest
from optical_memory.store import open_store

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_pipeline_stores_what_one_process_stores(
    local_ray: None, pdfs: dict[str, Path], redis_url: str, unique_tenant: str, tesseract: str
) -> None:
    sources = [pdfs["text2"], pdfs["scan2"], pdfs["encrypted"]]
    on_ray = ingest(
        sources, store=redis_url, tenant=f"{unique_tenant}-ray", decoder=tesseract,
        ray_address="local", batch_size=2,
    )  # fmt: skip
    alone = ingest(sources, store=redis_url, tenant=f"{unique_tenant}-one", decoder=tesseract)

    def pages(summary: object) -> list[tuple[object, ...]]:
        return [
            (p.source, p.page_number, p.flow, p.text, p.accuracy, p.key)
            for p in summary.pages  # type: ignore[attr-defined]
        ]

    assert len(on_ray.pages) == 4 and on_ray.written == 4
    assert pages(on_ray) == pages(alone)
    assert [(f.source, f.error) for f in on_ray.failures] == [
        (str(pdfs["encrypted"]), "EncryptedDocument")
    ]
    store = open_store(redis_url)
    try:
        ray_pages = DocumentPageStore(store.with_tenant(f"{unique_tenant}-ray"))
        one_pages = DocumentPageStore(store.with_tenant(f"{unique_tenant}-one"))
        keys = [page.key for page in alone.pages]
        assert ray_pages.read(keys) == one_pages.read(keys)  # records and PNG bytes
    finally:
        store.close()
    again = ingest(
        sources, store=redis_url, tenant=f"{unique_tenant}-ray", decoder=tesseract,
        ray_address="local",
    )  # fmt: skip
    assert (again.written, again.skipped) == (0, 2)
