from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def group() -> str:
    """A replay-cursor group family of this test's own."""
    return f"callbridge-dlq-replay-test-{uuid.uuid4().hex[:8]}"
