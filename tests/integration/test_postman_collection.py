"""Walk every request of the Connectus Postman collection against a real sandbox."""

from __future__ import annotations

import pytest

from sandbox.config import SandboxConfig
from sandbox.postman import COLLECTION, EXPECTED_MISSING, load, run_collection, table
from sandbox.server import SandboxServer


def test_collection_is_where_the_docs_say() -> None:
    assert COLLECTION.is_file(), COLLECTION
    assert len(load()) == 37


def test_every_collection_request_is_served(capsys: pytest.CaptureFixture[str]) -> None:
    config = SandboxConfig(api_user="postman-user", api_key="postman-key")
    with SandboxServer(config) as server:
        results = run_collection(server.base_url, "postman-user", "postman-key")
    with capsys.disabled():
        print("\n" + table(results))
    assert len(results) == len(load())
    server_errors = [(r.request.name, r.status) for r in results if r.status >= 500]
    assert server_errors == []
    missing = {r.request.name for r in results if r.status in (404, 405)}
    assert missing == set(EXPECTED_MISSING)
    # Every id was resolvable, so every documented call succeeds.
    assert [(r.request.name, r.status, r.detail) for r in results if r.status != 200] == []
