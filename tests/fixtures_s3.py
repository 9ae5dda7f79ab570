"""A real S3 server for tests: moto's server on a free local port, with one bucket.

Use it from a test module with ``from tests.fixtures_s3 import s3_server, s3_env  # noqa: F401`` or register it
once in tests/conftest.py with ``pytest_plugins = ["tests.fixtures_s3"]``.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

BUCKET = "machinable-test"
KEY = "testing-key"
SECRET = "testing-secret"
REGION = "us-east-1"


@dataclass
class S3Server:
    endpoint: str
    bucket: str
    options: dict[str, Any] = field(default_factory=dict)

    def url(self, prefix: str | None = None) -> str:
        """A fresh prefix in the bucket (tests never see each other's files)."""
        return f"s3://{self.bucket}/{prefix or uuid.uuid4().hex[:12]}"

    def target(self, prefix: str | None = None, **extra: Any) -> dict[str, Any]:
        """A storage dict with explicit endpoint and credentials (no environment needed)."""
        return {"url": self.url(prefix), **self.options, **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    pytest.importorskip("s3fs")
    boto3 = pytest.importorskip("boto3")
    server_module = pytest.importorskip("moto.server")
    port = _free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name=REGION,
        )
        client.create_bucket(Bucket=BUCKET)
        options = {
            "endpoint_url": endpoint,
            "key": KEY,
            "secret": SECRET,
            "client_kwargs": {"region_name": REGION},
        }
        yield S3Server(endpoint, BUCKET, options)
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server configured the way users configure S3: through the usual AWS environment variables."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server
