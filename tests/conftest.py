"""Shared test helpers: fixture locations, and skips for root / real scamper."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures" / "scamper-20211212"
TRANSCRIPTS = TESTS / "fixtures" / "transcripts"

IS_ROOT = os.geteuid() == 0


def have_tool(name: str) -> bool:
    return shutil.which(name) is not None


requires_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (network namespaces / raw sockets)")


def requires_tool(name: str):
    """Skip unless the real scamper tool ``name`` is installed (CI installs it)."""
    return pytest.mark.skipif(not have_tool(name), reason=f"{name} not installed (apt-get install scamper)")


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
