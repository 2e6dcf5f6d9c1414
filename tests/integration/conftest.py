"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sectigo_chain.testing.tls_servers import ServerLoop


@pytest.fixture(scope="module")
def loop() -> Iterator[ServerLoop]:
    """One loopback server thread per test module; it must end without a server error."""
    with ServerLoop() as shared:
        yield shared
    assert shared.errors == []
