"""The Jira secret (README, "Configuration"): an `https://` URL; plain `http://` only to a loopback address.

The API token goes with every request: over plain HTTP anyone on the path reads it. The local
stand-ins listen on 127.0.0.1, which is why a loopback address may be reached without TLS.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import boto3
import pytest

from guardduty_responder import ticketing
from guardduty_responder.responder import IncompleteResponseError
from guardduty_responder.ticketing import TicketingError

from conftest import REGION, Stack


def check_jira_url(url: Any) -> str:
    return ticketing.check_jira_url(url)


@pytest.fixture
def resolved_elsewhere(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every host name but a loopback one that something tried to resolve; none is (nothing leaves the machine)."""
    tried: list[str] = []
    resolve = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if str(host) not in ("127.0.0.1", "::1", "localhost"):
            tried.append(str(host))
            raise socket.gaierror(socket.EAI_NONAME, "only loopback addresses are resolved in this test")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    return tried


@pytest.mark.parametrize(
    "url",
    [
        "https://example.atlassian.net",
        "https://jira.example.com:8443/jira/",
        "HTTPS://Jira.Example.com",
        "http://127.0.0.1:8080",
        "http://127.8.9.10",
        "http://[::1]:8080/",
        "http://localhost:8080",
        "http://LOCALHOST",
    ],
)
def test_https_or_plain_http_to_a_loopback_address_is_accepted(url: str) -> None:
    assert check_jira_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://jira.example.com",
        "http://10.0.0.5:8080",
        "http://0.0.0.0:8080",
        "http://[::ffff:10.0.0.5]",
        "http://127.0.0.1.nip.io",
        "http://localhost.evil.example",
    ],
)
def test_plain_http_to_anything_but_a_loopback_address_is_refused_naming_the_problem(url: str) -> None:
    with pytest.raises(TicketingError, match=r"must be https://.*plain http:// only to a loopback address"):
        check_jira_url(url)


@pytest.mark.parametrize("url", ["", "jira.example.com", "ftp://jira.example.com", "https://", 42, None])
def test_a_url_that_is_not_one_is_refused(url: object) -> None:
    with pytest.raises(TicketingError, match="'url'"):
        check_jira_url(url)


def test_credentials_in_the_url_never_reach_the_error() -> None:
    with pytest.raises(TicketingError) as refused:
        check_jira_url("http://responder:s3cret@jira.example.com/")

    assert "s3cret" not in str(refused.value) and "jira.example.com" in str(refused.value)


def put_jira_url(stack: Stack, url: str) -> None:
    arn = stack.settings().jira_secret_arn
    client = boto3.client("secretsmanager", region_name=REGION)
    secret = json.loads(client.get_secret_value(SecretId=arn)["SecretString"])
    client.put_secret_value(SecretId=arn, SecretString=json.dumps({**secret, "url": url}))


def test_a_plain_http_jira_fails_the_jira_step_alone_and_the_retry_files_once_it_is_fixed(
    stack: Stack, resolved_elsewhere: list[str]
) -> None:
    instance_id = stack.launch()
    event = stack.event("tor_client", instance_id)
    finding_id = event["detail"]["id"]
    put_jira_url(stack, "http://jira.example.com")

    with pytest.raises(IncompleteResponseError, match="ticket: .*https://"):
        stack.invoke(event)

    assert stack.isolated(instance_id) and len(stack.snapshots_of(instance_id)) == 2
    assert stack.jira.requests == [] and resolved_elsewhere == []  # nothing sent, to the stand-in or anywhere
    record = stack.record(finding_id)
    assert record["steps"]["ticket"]["status"] == "failed" and record["completed"] is False
    assert "must be https://" in record["steps"]["ticket"]["error"]
    messages = stack.messages()
    assert len(messages) == 1
    assert "Jira: still to come" in messages[0]["Message"] and "https" in messages[0]["Message"]

    put_jira_url(stack, stack.jira.url)
    summary = stack.invoke(event)

    assert summary["jira_key"] == next(iter(stack.jira.issues)) and len(stack.jira.issues) == 1
    assert stack.messages() == [] and stack.record(finding_id)["completed"] is True
