"""Small builders of turns, pages and segments for the store tests."""

from __future__ import annotations

import os

import numpy as np

from optical_memory.records import Page, Segment, Turn, VisionTokens

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def turn(text: str, **fields: object) -> Turn:
    return Turn({"role": "user", "content": text, **fields})


def page(size: int = 1024, tier: str = "small") -> Page:
    """A page with random content (so a distinct id) of ``size`` bytes."""
    return Page(PNG_SIGNATURE + os.urandom(size), width=640, height=640, span=(0, 10), tier=tier)


def segment(
    thread: str, n_pages: int = 2, tier: str = "small", **fields: object
) -> tuple[Segment, list[Page]]:
    pages = [page(tier=tier) for _ in range(n_pages)]
    record = Segment(
        thread, turn_ids=["t1", "t2"], tier=tier, page_ids=[p.id for p in pages], **fields
    )  # type: ignore[arg-type]
    return record, pages


def vision_tokens(fingerprint: str = "model-a", rows: int = 73) -> VisionTokens:
    array = np.random.default_rng(rows).standard_normal((rows, 1280)).astype(np.float32)
    return VisionTokens.from_numpy(array, fingerprint, mode="tiny")
