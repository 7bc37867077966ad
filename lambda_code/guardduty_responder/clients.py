"""AWS clients with bounded timeouts, created on first use and reused while the container is warm."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=3,
    read_timeout=15,
    max_pool_connections=32,
)


class AwsClients:
    """One client per service, built lazily from one session (boto3's default session is not thread-safe)."""

    def __init__(self, session: boto3.Session | None = None, *, region: str | None = None) -> None:
        self._session = session or boto3.Session(region_name=region)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            with self._lock:
                client = self._clients.get(service)
                if client is None:
                    client = self._session.client(service, config=_CONFIG)
                    self._clients[service] = client
        return client

    @property
    def ec2(self) -> Any:
        return self._client("ec2")

    @property
    def dynamodb(self) -> Any:
        return self._client("dynamodb")

    @property
    def sns(self) -> Any:
        return self._client("sns")

    @property
    def autoscaling(self) -> Any:
        return self._client("autoscaling")

    @property
    def elbv2(self) -> Any:
        return self._client("elbv2")

    @property
    def secretsmanager(self) -> Any:
        return self._client("secretsmanager")
