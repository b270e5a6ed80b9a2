"""Shared test settings.

Outside CI a test may skip when a system component (a font, an OCR engine, Chromium,
redis-server) is missing, saying which. In CI (``CI=true``) it must not skip: a missing
component there is a broken install step, so the test fails instead.
"""

from __future__ import annotations

import os

import pytest


def missing_component(reason: str) -> None:
    """Skip (outside CI) or fail (in CI) because a system component is missing."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"missing in CI: {reason}")
    pytest.skip(reason)


def pytest_report_header() -> list[str]:
    """Name the releases a run tested: CI runs the model tests on two transformers."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("transformers", "torch", "langchain-core"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} not installed")
    return ["optical-memory under test with " + ", ".join(found)]
