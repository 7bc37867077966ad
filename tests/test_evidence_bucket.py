"""The incident's evidence in the evidence bucket (DESIGN.md, flow step 6; README "Evidence"): each object written once,
a manifest of their SHA-256 hashes, the Jira issue naming the manifest, a member account's evidence in the responder's
own bucket."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from guardduty_responder import handler
from guardduty_responder.evidence_store import MANIFEST, IncidentFacts, store_evidence
from guardduty_responder.responder import IncompleteResponseError
from test_accounts import MEMBER, member, member_event  # noqa: F401 (member is a fixture)

from conftest import ACCOUNT, REGION, Network, Stack

OBJECTS = {
    "finding-delivered.json",
    "finding-guardduty.json",
    "instance.json",
    "network-interfaces.json",
    "security-groups.json",
    "console-output.txt",
    "timeline.json",
}


def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def stored(bucket: str, prefix: str = "incidents/") -> dict[str, bytes]:
    """Every object under the prefix, by key, as the bucket holds it."""
    listed = s3().list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {item["Key"]: s3().get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed}


def manifest_of(bucket: str, instance_id: str) -> tuple[str, dict[str, Any], dict[str, bytes]]:
    objects = stored(bucket)
    keys = [key for key in objects if key.endswith("/" + MANIFEST) and f"/{instance_id}/" in key]
    assert len(keys) == 1, sorted(objects)
    return keys[0], json.loads(objects[keys[0]]), objects


def test_one_containment_stores_the_evidence_with_a_manifest_whose_hashes_match(stack: Stack) -> None:
    instance_id = stack.launch(enis=2)
    event = stack.event("backdoor_cc_dns", instance_id)

    summary = stack.invoke(event)

    key, manifest, objects = manifest_of(stack.evidence_bucket, instance_id)
    prefix = f"incidents/{ACCOUNT}/{REGION}/{instance_id}/{summary['finding_id']}/"
    assert key == prefix + MANIFEST
    assert {o["key"] for o in manifest["objects"]} == {prefix + name for name in OBJECTS}
    for entry in manifest["objects"]:
        body = objects[entry["key"]]
        assert entry["sha256"] == hashlib.sha256(body).hexdigest() and entry["bytes"] == len(body)
    assert manifest["snapshot_ids"] == sorted(summary["snapshot_ids"]) and len(manifest["snapshot_ids"]) == 2
    volumes = {m["Ebs"]["VolumeId"] for m in stack.describe(instance_id)["BlockDeviceMappings"]}
    assert set(manifest["volume_ids"]) == volumes
    assert manifest["incident"] == {
        "account_id": ACCOUNT,
        "region": REGION,
        "instance_id": instance_id,
        "finding_id": summary["finding_id"],
    }
    assert manifest["not_collected"] == {}

    def read(name: str) -> Any:
        return json.loads(objects[prefix + name])

    assert read("finding-delivered.json") == event
    assert read("finding-guardduty.json")["id"] == summary["finding_id"]
    assert read("instance.json")["InstanceId"] == instance_id
    isolation = stack.responder_groups()["isolation"]["GroupId"]
    interfaces = read("network-interfaces.json")
    assert len(interfaces) == 2
    original = stack.record(summary["finding_id"])["original_groups"]
    for eni, groups in interfaces.items():
        assert groups["groups_before"] == list(original[eni]) and groups["groups_after"] == [isolation]
    described = {group["GroupId"]: group for group in read("security-groups.json")}
    assert {stack.app_group, stack.ssh_group, isolation} <= set(described)
    assert "IpPermissionsEgress" in described[isolation]
    timeline = read("timeline.json")
    steps = [entry["step"] for entry in timeline]
    assert steps[:2] == ["claimed", "contain"] and "snapshots" in steps and "verify" in steps
    assert all(entry["status"] in ("done", "skipped") and entry["at"].endswith("Z") for entry in timeline)


def test_each_object_is_under_the_buckets_object_lock(stack: Stack) -> None:
    instance_id = stack.launch()
    stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    key, manifest, _ = manifest_of(stack.evidence_bucket, instance_id)

    for name in [key, *(entry["key"] for entry in manifest["objects"])]:
        head = s3().head_object(Bucket=stack.evidence_bucket, Key=name)
        assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"]
    version = s3().list_object_versions(Bucket=stack.evidence_bucket, Prefix=key)["Versions"][0]["VersionId"]
    with pytest.raises(ClientError):
        s3().delete_object(Bucket=stack.evidence_bucket, Key=key, VersionId=version)


def test_the_jira_issue_names_the_manifest_and_its_hash(stack: Stack) -> None:
    instance_id = stack.launch()
    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    key, _, objects = manifest_of(stack.evidence_bucket, instance_id)

    uri, digest = f"s3://{stack.evidence_bucket}/{key}", hashlib.sha256(objects[key]).hexdigest()
    description = stack.jira.issues[summary["jira_key"]]["fields"]["description"]
    assert f"manifest: {uri}" in description and f"SHA-256:  {digest}" in description
    assert "evidence\\_bucket: 7 object(s) and the manifest" in description
    version = s3().head_object(Bucket=stack.evidence_bucket, Key=key)["VersionId"]
    assert f"version:  {version}" in description
    assert stack.record(summary["finding_id"])["evidence_manifest"] == {
        "uri": uri,
        "sha256": digest,
        "version_id": version,
    }


def test_a_retry_writes_each_object_once_and_the_manifest_matches_what_was_kept(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("backdoor_cc_dns", instance_id)
    failing = {"on": True}

    def refuse_the_manifest(params: dict[str, Any], **_: Any) -> None:
        if failing["on"] and params["Key"].endswith(MANIFEST):
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "PutObject")

    handler.get_responder().clients.s3.meta.events.register("before-parameter-build.s3.PutObject", refuse_the_manifest)
    with pytest.raises(IncompleteResponseError, match="evidence_bucket"):
        stack.invoke(event)
    first = stored(stack.evidence_bucket)
    assert first and not any(key.endswith(MANIFEST) for key in first)
    failing["on"] = False

    stack.invoke(event)

    key, manifest, objects = manifest_of(stack.evidence_bucket, instance_id)
    # The retry's own timeline differs: what the first attempt wrote is kept, and the manifest hashes that.
    assert {k: v for k, v in objects.items() if k != key} == first
    for entry in manifest["objects"]:
        assert entry["sha256"] == hashlib.sha256(objects[entry["key"]]).hexdigest()
        assert entry["found_in_bucket"] is True
        assert entry["version_id"] == s3().head_object(Bucket=stack.evidence_bucket, Key=entry["key"])["VersionId"]
    # The issue was filed by the first attempt, without the evidence: the retry comments it.
    (issue,) = stack.jira.issues.values()
    assert any(f"manifest: s3://{stack.evidence_bucket}/{key}" in str(body) for body in issue["comments"])
    versions = s3().list_object_versions(Bucket=stack.evidence_bucket)["Versions"]
    assert sorted(version["Key"] for version in versions) == sorted(objects)


def test_an_object_planted_under_an_incident_s_key_is_named_never_vouched_for(stack: Stack) -> None:
    instance_id = stack.launch()
    event = stack.event("backdoor_cc_dns", instance_id)
    prefix = f"incidents/{ACCOUNT}/{REGION}/{instance_id}/{event['detail']['id']}/"
    planted = b"nothing to see here"
    s3().put_object(Bucket=stack.evidence_bucket, Key=prefix + "console-output.txt", Body=planted)

    summary = stack.invoke(event)

    _, manifest, _ = manifest_of(stack.evidence_bucket, instance_id)
    assert prefix + "console-output.txt" not in {entry["key"] for entry in manifest["objects"]}
    assert "without a whole-object SHA-256" in manifest["not_vouched_for"]["console-output.txt"]
    assert stack.record(summary["finding_id"])["steps"]["evidence_bucket"]["status"] == "done"


def test_storing_again_writes_nothing_and_names_the_same_manifest(stack: Stack) -> None:
    instance_id = stack.launch()
    facts = IncidentFacts(
        account_id=ACCOUNT,
        region=REGION,
        instance_id=instance_id,
        finding_id="f" * 32,
        delivered_event={"id": "event"},
        guardduty_copy=None,
        original_groups={},
        snapshot_ids=["snap-1"],
        volume_ids=["vol-1"],
        timeline=[{"step": "contain", "status": "done", "at": "2026-11-30T00:00:00Z"}],
    )
    first = store_evidence(s3(), stack.ec2, stack.evidence_bucket, facts)
    later = IncidentFacts(**{**vars(facts), "timeline": [*facts.timeline, {"step": "snapshots"}]})

    again = store_evidence(s3(), stack.ec2, stack.evidence_bucket, later)

    assert again[1] == first[1]
    versions = s3().list_object_versions(Bucket=stack.evidence_bucket)["Versions"]
    assert len(versions) == len({version["Key"] for version in versions}) == 7
    assert first[0].endswith("not collected: finding-guardduty.json")


def test_what_cannot_be_read_is_named_in_the_manifest_and_the_rest_is_stored(stack: Stack) -> None:
    instance_id = stack.launch()

    def no_console(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "UnsupportedOperation", "Message": "no console"}}, "GetConsoleOutput")

    handler.get_responder().clients.ec2.meta.events.register("before-call.ec2.GetConsoleOutput", no_console)

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    _, manifest, _ = manifest_of(stack.evidence_bucket, instance_id)
    assert "UnsupportedOperation" in manifest["not_collected"]["console-output.txt"]
    assert len(manifest["objects"]) == len(OBJECTS) - 1
    assert stack.record(summary["finding_id"])["steps"]["evidence_bucket"]["status"] == "done"


def test_without_an_evidence_bucket_nothing_is_stored_and_nothing_fails(stack: Stack) -> None:
    stack.configure(EVIDENCE_BUCKET="")
    instance_id = stack.launch()

    summary = stack.invoke(stack.event("backdoor_cc_dns", instance_id))

    assert stored(stack.evidence_bucket) == {}
    assert "evidence_bucket" not in summary["steps"] and summary["isolated"]


def test_a_member_accounts_evidence_goes_to_the_responders_own_bucket(stack: Stack, member: Network) -> None:  # noqa: F811
    instance_id = stack.launch(network=member)
    event = member_event(stack, "backdoor_cc_dns", instance_id, member)

    summary = stack.invoke(event)

    key, manifest, objects = manifest_of(stack.evidence_bucket, instance_id)
    assert (
        key.startswith(f"incidents/{MEMBER}/{REGION}/{instance_id}/") and manifest["incident"]["account_id"] == MEMBER
    )
    instance = json.loads(objects[key.replace(MANIFEST, "instance.json")])
    assert instance["InstanceId"] == instance_id and instance["NetworkInterfaces"][0]["VpcId"] == member.vpc_id
    assert stack.record(summary["finding_id"])["steps"]["evidence_bucket"]["status"] == "done"
