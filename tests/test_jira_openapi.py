"""The Jira OpenAPI contract checker accepts what the pinned documents allow and refuses the rest."""

from __future__ import annotations

from typing import Any

import pytest

from jira_openapi import Contract, ContractError

CLOUD = Contract("cloud")
DATACENTER = Contract("datacenter")
ISSUE = {"id": "10001", "key": "SEC-1", "self": "https://example.atlassian.net/rest/api/3/issue/10001"}
CREATE_BODY = {
    "fields": {
        "project": {"key": "SEC"},
        "issuetype": {"name": "Task"},
        "summary": "GuardDuty: UnauthorizedAccess:EC2/SSHBruteForce on i-0123456789abcdef0",
        "labels": ["guardduty"],
    }
}


def test_cloud_enhanced_search_answer_with_a_page_token_passes() -> None:
    answer = {"issues": [{**ISSUE, "fields": {"summary": "x"}}], "nextPageToken": "CAEaAggD", "isLast": False}
    CLOUD.check_answer("GET", "/rest/api/3/search/jql", 200, answer)
    CLOUD.check_answer("POST", "/ex/jira/11223344-aaaa/rest/api/3/search/jql", 200, {"issues": [], "isLast": True})


def test_cloud_enhanced_search_answer_with_offset_paging_fails() -> None:
    answer = {"issues": [], "startAt": 0, "maxResults": 50, "total": 0}
    with pytest.raises(ContractError, match="'maxResults', 'startAt', 'total' were unexpected"):
        CLOUD.check_answer("GET", "/rest/api/3/search/jql", 200, answer)


def test_cloud_enhanced_search_request_through_the_gateway_passes() -> None:
    query = {"jql": ["project = SEC AND labels = guardduty"], "fields": ["summary,labels"], "maxResults": ["50"]}
    CLOUD.check_request("GET", "/ex/jira/11223344-aaaa/rest/api/3/search/jql", query, None)
    CLOUD.check_request("GET", "/rest/api/3/search/jql", {"reconcileIssues": ["10001,10002"]}, None)
    CLOUD.check_request("POST", "/rest/api/3/search/jql", {}, {"jql": "project = SEC", "nextPageToken": "CAEaAggD"})


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"startAt": ["0"]}, "no query parameter 'startAt'"),
        ({"maxResults": ["fifty"]}, "query parameter 'maxResults'"),
        ({"failFast": ["yes"]}, "query parameter 'failFast'"),
    ],
)
def test_cloud_enhanced_search_with_a_bad_query_parameter_fails(query: dict[str, list[str]], problem: str) -> None:
    with pytest.raises(ContractError, match=problem):
        CLOUD.check_request("GET", "/rest/api/3/search/jql", query, None)


def test_datacenter_has_no_enhanced_search() -> None:
    with pytest.raises(ContractError, match="no documented operation matches GET /rest/api/3/search/jql"):
        DATACENTER.check_request("GET", "/rest/api/3/search/jql", {"jql": ["project = SEC"]}, None)


def test_datacenter_search_with_offset_paging_passes() -> None:
    query = {"jql": ["project = SEC"], "startAt": ["0"], "maxResults": ["50"], "fields": ["summary,labels"]}
    DATACENTER.check_request("GET", "/rest/api/2/search", query, None)
    answer = {"startAt": 0, "maxResults": 50, "total": 1, "issues": [{**ISSUE, "fields": {"summary": "x"}}]}
    DATACENTER.check_answer("GET", "/rest/api/2/search", 200, answer)


def test_the_gateway_prefix_is_cloud_only() -> None:
    with pytest.raises(ContractError, match="no documented operation"):
        DATACENTER.check_request("GET", "/ex/jira/11223344-aaaa/rest/api/2/serverInfo", {}, None)


@pytest.mark.parametrize("contract", [CLOUD, DATACENTER], ids=["cloud", "datacenter"])
def test_create_body_with_fields_and_properties_passes(contract: Contract) -> None:
    body = {**CREATE_BODY, "properties": [{"key": "guardduty", "value": {"finding": "abc"}}]}
    contract.check_request("POST", "/rest/api/2/issue", {}, body)
    contract.check_answer("POST", "/rest/api/2/issue", 201, ISSUE)


@pytest.mark.parametrize("contract", [CLOUD, DATACENTER], ids=["cloud", "datacenter"])
def test_create_answer_with_an_undeclared_property_fails(contract: Contract) -> None:
    with pytest.raises(ContractError, match="'startAt' was unexpected"):
        contract.check_answer("POST", "/rest/api/2/issue", 201, {**ISSUE, "startAt": 0})


def test_create_body_of_the_wrong_type_fails() -> None:
    with pytest.raises(ContractError, match="request body at fields"):
        CLOUD.check_request("POST", "/rest/api/2/issue", {}, {"fields": ["summary"]})


def test_an_undocumented_operation_fails() -> None:
    with pytest.raises(ContractError, match="DELETE /rest/api/2/issue/{issueIdOrKey} is not a documented operation"):
        CLOUD.check_request("DELETE", "/rest/api/2/issue/SEC-1", {}, None)


@pytest.mark.parametrize(
    ("contract", "answer"),
    [
        (
            CLOUD,
            {
                "baseUrl": "https://example.atlassian.net",
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100295,
                "buildDate": "2026-06-01T00:00:00.000+0000",
                "serverTime": "2026-06-02T10:00:00.000+0000",
                "scmInfo": "2b2a3c4d",
                "serverTitle": "Jira",
            },
        ),
        (
            DATACENTER,
            {
                "baseUrl": "https://jira.example.com",
                "version": "10.3.5",
                "versionNumbers": [10, 3, 5],
                "deploymentType": "Server",
                "buildNumber": 10030005,
                "buildDate": "2025-04-01T00:00:00.000+0000",
                "serverTime": "2026-06-02T10:00:00.000+0000",
                "scmInfo": "abcdef",
                "serverTitle": "Jira",
            },
        ),
    ],
    ids=["cloud", "datacenter"],
)
def test_server_info_answers_pass(contract: Contract, answer: dict[str, Any]) -> None:
    contract.check_request("GET", "/rest/api/2/serverInfo", {}, None)
    contract.check_answer("GET", "/rest/api/2/serverInfo", 200, answer)


def test_cloud_server_info_with_an_undeclared_property_fails() -> None:
    with pytest.raises(ContractError, match="'startAt' was unexpected"):
        CLOUD.check_answer("GET", "/rest/api/2/serverInfo", 200, {"deploymentType": "Cloud", "startAt": 0})


def test_cloud_createmeta_answers_pass() -> None:
    issue_types = {
        "issueTypes": [{"id": "10002", "name": "Task", "subtask": False, "hierarchyLevel": 0}],
        "maxResults": 50,
        "startAt": 0,
        "total": 1,
    }
    CLOUD.check_request("GET", "/rest/api/2/issue/createmeta/SEC/issuetypes", {"maxResults": ["50"]}, None)
    CLOUD.check_answer("GET", "/rest/api/2/issue/createmeta/SEC/issuetypes", 200, issue_types)
    summary = {
        "fieldId": "summary",
        "key": "summary",
        "name": "Summary",
        "operations": ["set"],
        "required": True,
        "schema": {"type": "string", "system": "summary"},
        "hasDefaultValue": False,
    }
    priority = {**summary, "fieldId": "priority", "key": "priority", "name": "Priority", "required": False}
    priority |= {"schema": {"type": "priority", "system": "priority"}, "allowedValues": [{"id": "3", "name": "Medium"}]}
    fields = {"fields": [summary, priority], "maxResults": 50, "startAt": 0, "total": 2}
    CLOUD.check_answer("GET", "/rest/api/2/issue/createmeta/SEC/issuetypes/10002", 200, fields)


def test_cloud_createmeta_field_without_field_id_fails() -> None:
    field = {"key": "summary", "name": "Summary", "operations": ["set"], "required": True, "schema": {"type": "string"}}
    with pytest.raises(ContractError, match="'fieldId' is a required property"):
        CLOUD.check_answer("GET", "/rest/api/2/issue/createmeta/SEC/issuetypes/10002", 200, {"fields": [field]})


def test_datacenter_createmeta_answers_pass() -> None:
    page = {"maxResults": 50, "startAt": 0, "total": 1, "isLast": True}
    issue_type = {
        "id": "3",
        "name": "Task",
        "subtask": False,
        "self": "https://jira.example.com/rest/api/2/issuetype/3",
    }
    DATACENTER.check_request("GET", "/rest/api/2/issue/createmeta/SEC/issuetypes", {"startAt": ["0"]}, None)
    DATACENTER.check_answer("GET", "/rest/api/2/issue/createmeta/SEC/issuetypes", 200, {**page, "values": [issue_type]})
    field = {
        "fieldId": "priority",
        "name": "Priority",
        "operations": ["set"],
        "required": False,
        "schema": {"type": "priority", "system": "priority"},
        "hasDefaultValue": True,
        "defaultValue": {"id": "3", "name": "Medium"},
        "allowedValues": [{"id": "3", "name": "Medium"}],
    }
    DATACENTER.check_answer("GET", "/rest/api/2/issue/createmeta/SEC/issuetypes/3", 200, {**page, "values": [field]})


@pytest.mark.parametrize("contract", [CLOUD, DATACENTER], ids=["cloud", "datacenter"])
def test_issue_property_round_trip_passes(contract: Contract) -> None:
    contract.check_request("PUT", "/rest/api/2/issue/SEC-1/properties/guardduty", {}, {"finding": "abc"})
    answer = {"key": "guardduty", "value": {"finding": "abc"}}
    contract.check_answer("GET", "/rest/api/2/issue/SEC-1/properties/guardduty", 200, answer)


@pytest.mark.parametrize("contract", [CLOUD, DATACENTER], ids=["cloud", "datacenter"])
def test_comment_passes_and_jira_errors_are_checked(contract: Contract) -> None:
    contract.check_request("POST", "/rest/api/2/issue/SEC-1/comment", {}, {"body": "Instance isolated."})
    error = {"errorMessages": ["Issue does not exist"], "errors": {}}
    contract.check_answer("POST", "/rest/api/2/issue/SEC-1/comment", 404, error)
    with pytest.raises(ContractError, match="error collection"):
        contract.check_answer("POST", "/rest/api/2/issue/SEC-1/comment", 404, {"message": "not found"})


def test_cloud_documents_the_comment_limit_status() -> None:
    error = {"errorMessages": ["The issue has reached its comment limit."], "errors": {}}
    CLOUD.check_answer("POST", "/rest/api/2/issue/SEC-1/comment", 413, error)


def test_an_undocumented_success_status_fails() -> None:
    with pytest.raises(ContractError, match="status 202 is not documented"):
        CLOUD.check_answer("POST", "/rest/api/2/issue", 202, ISSUE)
