"""AWS clients with bounded timeouts, created on first use and reused while the container is warm."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# Three attempts in all (botocore's standard mode backs off on throttling between them), each
# bounded, so one call can never hold the invocation for long.
TOTAL_ATTEMPTS = 3
_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": TOTAL_ATTEMPTS},
    connect_timeout=3,
    read_timeout=10,
    max_pool_connections=32,
)
# Actions AWS carries out for every request it receives (they take no client token): botocore
# retrying one whose answer was lost would do it twice (two sets of snapshots). They are sent once;
# a retry of their step looks first for what a lost attempt did (evidence.snapshot_volumes).
SINGLE_ATTEMPT = {"ec2": ("CreateSnapshots",)}


def _end_after_one_attempt(caught_exception: Exception | None, response: Any, operation: Any, **_: Any) -> None:
    """botocore's `needs-retry` hook, asked after every attempt: this one ends the call with the first outcome.

    An action's own handlers run before the service-wide one that would retry it; raising here stops that.
    """
    if caught_exception is not None:
        raise caught_exception
    if response is not None and response[0].status_code >= 300:
        raise ClientError(response[1], operation.name)


class AwsClients:
    """One client per service, built lazily from one session (boto3's default session is not thread-safe)."""

    def __init__(self, session: boto3.Session | None = None, *, region: str | None = None) -> None:
        self._session = session or boto3.Session(region_name=region)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def region(self) -> str | None:
        return self._session.region_name

    @property
    def partition(self) -> str:
        return self._session.get_partition_for_region(self.region or "us-east-1")

    def lazy(self, service: str) -> LazyClient:
        """A stand-in for the service's client that creates it on first use."""
        return LazyClient(self, service)

    def _client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            with self._lock:
                client = self._clients.get(service)
                if client is None:
                    # The service is one of the names below; the stubs type only literal names.
                    client = self._session.client(service, config=_CONFIG)  # type: ignore[call-overload]
                    for action in SINGLE_ATTEMPT.get(service, ()):
                        client.meta.events.register_first(f"needs-retry.{service}.{action}", _end_after_one_attempt)
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

    @property
    def sts(self) -> Any:
        return self._client("sts")

    @property
    def iam(self) -> Any:
        return self._client("iam")

    @property
    def s3(self) -> Any:
        return self._client("s3")

    @property
    def guardduty(self) -> Any:
        return self._client("guardduty")


class LazyClient:
    """Holds the place of one service's client for an adapter, and creates it on its first call.

    The container is then ready as soon as the code is imported and the configuration read; the
    clients it needs are built during the first invocation, and only those.
    """

    def __init__(self, clients: AwsClients, service: str) -> None:
        self._clients = clients
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clients._client(self._service), name)
