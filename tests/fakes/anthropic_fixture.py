"""The `fake_anthropic` fixture: a fresh fake Messages API per test, so scripts and failures never leak."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.anthropic_server import FakeAnthropic


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A started fake; point clients at `.url` with `.api_key`; inspect `.requests` afterwards."""
    with FakeAnthropic() as fake:
        yield fake
