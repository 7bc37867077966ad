"""The Jira secret (README, "Configuration"): an `https://` URL; plain `http://` only to a loopback address.

The API token goes with every request: over plain HTTP anyone on the path reads it. The local
stand-ins listen on 127.0.0.1, which is why a loopback address may be reached without TLS.
"""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import pytest

from guardduty_responder import jira
from guardduty_responder.responder import IncompleteResponseError
from guardduty_responder.ticketing import TicketingError
from guardduty_responder_tools.jira_standin import CLOUD_ID

from conftest import Stack


def check_jira_url(url: Any) -> str:
    return jira.check_jira_url(url)


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

    assert "s3cret" not in str(refused.value) and "must not hold credentials" in str(refused.value)


def put_jira_url(stack: Stack, url: str) -> None:
    stack.put_jira_secret({**stack.jira_secret(), "url": url})


@pytest.mark.both_jira_deployments
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


# -- which Jira, and how the responder signs in ---------------------------------------------------------------

GATEWAY = "https://api.atlassian.com/ex/jira/"


@pytest.mark.parametrize(
    ("secret", "api_url", "deployment", "bearer"),
    [
        (
            {"url": "https://jira.example.com/", "username": "a@example.com", "api_token": "tok-value"},
            "https://jira.example.com",
            None,
            False,
        ),
        ({"url": "https://jira.example.com", "token": "tok-value"}, "https://jira.example.com", None, True),
        (
            {"url": "https://jira.example.com", "token": "tok-value", "deployment": "datacenter"},
            "https://jira.example.com",
            "datacenter",
            True,
        ),
        (
            {
                "url": "https://sec.example.org",
                "username": "a@example.com",
                "api_token": "tok-value",
                "deployment": "cloud",
            },
            "https://sec.example.org",
            "cloud",
            False,
        ),
        (
            {"cloud_id": CLOUD_ID, "username": "svc@example.com", "api_token": "tok-value"},
            GATEWAY + CLOUD_ID,
            "cloud",
            False,
        ),
        (
            {"cloud_id": CLOUD_ID, "username": "svc@example.com", "api_token": "tok-value", "deployment": "cloud"},
            GATEWAY + CLOUD_ID,
            "cloud",
            False,
        ),
    ],
)
def test_each_form_of_the_secret_names_where_the_api_is_and_how_to_sign_in(
    secret: dict[str, str], api_url: str, deployment: str | None, bearer: bool
) -> None:
    site = jira.JiraSite.from_secret(json.dumps(secret))

    assert (site.api_url, site.deployment, site.bearer) == (api_url, deployment, bearer)
    assert "tok-value" not in repr(site)


@pytest.mark.parametrize(
    ("secret", "named"),
    [
        ("not json", "not a JSON object"),
        ('["a list"]', "not a JSON object"),
        ({"url": "https://jira.example.com"}, "neither 'token' nor 'username' and 'api_token'"),
        ({"url": "https://a:s3cret-value@jira.example.com", "token": "t"}, "must not hold credentials"),
        ({"cloud_id": CLOUD_ID + "\n", "username": "a", "api_token": "s3cret-value"}, "not a cloud id"),
        (
            {"url": "https://j.example.com", "token": "s3cret-value", "deployment": "cloud"},
            "Data Center personal access token",
        ),
        (
            {"url": "https://j.example.com", "token": "s3cret-value", "deployment": "server"},
            'must be "cloud" or "datacenter"',
        ),
        ({"cloud_id": "../../admin", "username": "a", "api_token": "s3cret-value"}, "not a cloud id"),
        ({"cloud_id": CLOUD_ID, "token": "s3cret-value"}, "goes with 'username'"),
        (
            {"cloud_id": CLOUD_ID, "username": "a", "api_token": "s3cret-value", "deployment": "datacenter"},
            "only Jira Cloud has",
        ),
    ],
)
def test_a_secret_the_responder_cannot_use_is_refused_naming_the_problem_not_the_values(
    secret: object, named: str
) -> None:
    with pytest.raises(TicketingError, match=re.escape(named)) as refused:
        jira.JiraSite.from_secret(secret if isinstance(secret, str) else json.dumps(secret))

    assert "s3cret-value" not in str(refused.value)


def test_a_scoped_token_goes_through_the_gateway_with_the_cloud_id(stack: Stack) -> None:
    secret = stack.jira_secret()
    # The stand-in plays Atlassian's gateway too: `url` names the gateway when `cloud_id` is set.
    stack.put_jira_secret(
        {"cloud_id": CLOUD_ID, "url": stack.jira.url, **{k: secret[k] for k in ("username", "api_token")}}
    )

    summary = stack.invoke(stack.event("tor_client", stack.launch()))

    assert summary["jira_key"] == next(iter(stack.jira.issues))
    paths = [path for _, path, _ in stack.jira.requests]
    assert paths and all(path.startswith(f"/ex/jira/{CLOUD_ID}/rest/api/2/") for path in paths), paths
    assert not any(path.endswith("/serverInfo") for path in paths)  # a cloud id is Cloud: nothing to ask


def test_a_secret_that_says_data_center_of_a_cloud_site_gets_410_and_the_remedy(stack: Stack) -> None:
    stack.put_jira_secret({**stack.jira_secret(), "deployment": "datacenter"})
    event = stack.event("tor_client", stack.launch())
    stack.jira.lose_answers(only=r"/rest/api/2/issue$")
    with pytest.raises(IncompleteResponseError):
        stack.invoke(event)

    with pytest.raises(IncompleteResponseError, match="HTTP 410"):
        stack.invoke(event)  # the retry searches where Data Center would

    error = stack.record(event["detail"]["id"])["steps"]["ticket"]["error"]
    assert "The requested API has been removed" in error
    assert 'Jira Cloud answers 410 here: set "deployment": "cloud" in the Jira secret' in error
    assert len(stack.jira.issues) == 1
    # The removed search is this test's very point: it is not held against the responder's requests.
    stack.jira.exchanges.clear()


@pytest.mark.parametrize("key", ["SEC-1\n", "SEC-1/../x", "sec-1", "SEC-0", ""])
def test_only_an_issue_key_is_taken_for_one(key: str) -> None:
    with pytest.raises(TicketingError, match="without an issue key"):
        jira._issue_key({"key": key}, "issue creation")
