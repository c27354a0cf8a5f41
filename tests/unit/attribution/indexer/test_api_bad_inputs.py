"""The indexer API's bad inputs: integers past what SQL holds (2^63 and up) and other malformed parameters get a
400 JSON error naming the parameter, never a 500 (before: OverflowError from the database driver)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from attribution.indexer.api import create_app
from attribution.indexer.db import open_engine

NODE = "0x" + "11" * 20
BIG = str(2**63)
CASES = [
    f"/v1/records/{NODE}/{BIG}",
    f"/v1/records/{NODE}/{2**64}",
    f"/v1/records/{NODE}/-1",
    f"/v1/records/{NODE}/{'9' * 5000}",
    f"/v1/batches/{BIG}",
    f"/v1/records?from_ts={BIG}",
    f"/v1/records?to_ts={2**70}",
    f"/v1/records?offset={BIG}",
    f"/v1/batches?offset={BIG}",
    f"/v1/registry?at={BIG}",
    f"/v1/usage/epoch?epoch_blocks={BIG}",
    "/v1/records?limit=0",
    f"/v1/disputes/{BIG}",
    f"/v1/disputes?batch={BIG}",
    "/v1/disputes?batch=0",
    "/v1/disputes?status=lost",
    "/v1/disputes?kind=fraud",
    "/v1/disputes?node=0x12",
    "/v1/disputes?limit=1001",
    "/v1/nodes/0x12/disputes",
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    db = Path(tmp_path_factory.mktemp("idx")) / "index.db"
    return TestClient(create_app(open_engine(f"sqlite:///{db}")), raise_server_exceptions=False)


@pytest.mark.parametrize("path", CASES)
def test_bad_integer_is_400_json(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    err = r.json()["error"]
    assert err["code"] == "bad_request" and len(err["message"]) > 10


def test_largest_id_is_a_404_not_an_error(client: TestClient) -> None:
    r = client.get(f"/v1/records/{NODE}/{2**63 - 1}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_disputes_of_an_empty_index_are_empty_not_errors(client: TestClient) -> None:
    assert client.get("/v1/disputes").json()["disputes"] == []
    assert client.get(f"/v1/nodes/{NODE}/disputes").json()["slashed"] == "0"
    assert client.get("/v1/status").json()["disputes"] == {"open": 0, "answered": 0, "upheld": 0}
    r = client.get("/v1/disputes/1")
    assert r.status_code == 404 and "dispute 1" in r.json()["error"]["message"]
