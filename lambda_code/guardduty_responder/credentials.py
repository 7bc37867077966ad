"""Credential findings, when `credential_revocation = "role"`: void every older session of the stolen role.

By default a credential finding revokes the credentials of the instance alone (`identity`). This
is the stronger option for a role nothing else uses: a deny-all inline policy conditioned on
`aws:TokenIssueTime` voids every session of the role issued before the moment of revocation,
which is what the IAM console's "Revoke active sessions" does (the policy name is the console's
too, so either way a later revocation replaces the earlier one). It runs after the instance
profile is removed, so that no session issued in between survives.
"""

from __future__ import annotations

import fnmatch
import json
import math
from typing import Any

from botocore.exceptions import ClientError

from . import utc_timestamp
from .aws_errors import error_code
from .finding import ExfiltratedCredentials
from .identity import live_associations, policy_document
from .isolation import InstanceFacts
from .steps import StepSkipped as Skip

# Besides the identity steps' own (identity.IDENTITY_PERMISSIONS).
PERMISSIONS = ("iam:GetRole", "iam:ListInstanceProfilesForRole", "iam:PutRolePolicy")

REVOKE_POLICY_NAME = "AWSRevokeOlderSessions"
_EC2_SERVICE = "ec2.amazonaws.com"


def revoke_older_sessions(
    ec2: Any,
    iam: Any,
    instance: InstanceFacts,
    credentials: ExfiltratedCredentials,
    *,
    protected: frozenset[str],
    now: float,
) -> tuple[str, dict[str, Any]]:
    """Deny everything to the role's sessions issued before `now`; sessions issued later are unaffected.

    Refused (recorded as skipped, for a person) unless the role is the one whose session was stolen
    (its unique id is the first half of the finding's principal id), is not the responder's own, can
    be assumed by EC2 only, and is held by no other instance of this region through any of its
    instance profiles: everything else using the role would lose its access with the stolen sessions.
    """
    role_name = credentials.role_name
    if any(fnmatch.fnmatchcase(role_name, pattern) for pattern in protected):
        raise Skip(f"role {role_name} is protected (the responder's own, or listed): its sessions are not revoked")
    _check_it_is_the_stolen_ec2_role(iam, credentials)
    _check_no_other_instance_uses(ec2, iam, role_name, instance)
    # The next whole second: a session issued earlier in the current one is revoked too.
    cutoff = utc_timestamp(math.floor(now) + 1)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}},
            }
        ],
    }
    try:
        iam.put_role_policy(RoleName=role_name, PolicyName=REVOKE_POLICY_NAME, PolicyDocument=json.dumps(policy))
    except ClientError as error:
        if error_code(error) not in ("AccessDenied", "AccessDeniedException"):
            raise
        # A protected role (the policies deny writing it), or a member role without the credential
        # actions: retrying cannot help.
        raise Skip(
            f"writing {REVOKE_POLICY_NAME} on role {role_name} was refused (AccessDenied): revoke by hand"
        ) from error
    return (
        f"sessions of role {role_name} issued before {cutoff} revoked ({REVOKE_POLICY_NAME})",
        {"sessions_revoked_before": cutoff, "revoked_role": role_name},
    )


def _check_it_is_the_stolen_ec2_role(iam: Any, credentials: ExfiltratedCredentials) -> None:
    """Skip unless the role is the very one whose session was stolen, and only EC2 may assume it."""
    role_name = credentials.role_name
    try:
        role = iam.get_role(RoleName=role_name)["Role"]
    except ClientError as error:
        if error_code(error) != "NoSuchEntity":
            raise
        raise Skip(f"role {role_name} no longer exists") from error
    role_id = credentials.principal_id.split(":", 1)[0]
    if role.get("RoleId") != role_id:
        raise Skip(
            f"role {role_name} is not the role {role_id} whose session was stolen (recreated since?): revoke by hand"
        )
    principals = _trusted_principals(role.get("AssumeRolePolicyDocument"))
    if principals != {("Service", _EC2_SERVICE)}:
        who = ", ".join(sorted(p for _, p in principals)) or "unreadable trust policy"
        raise Skip(
            f"role {role_name} can be assumed by more than EC2 ({who}): "
            "revoking its sessions could cut off others; revoke by hand if that is acceptable"
        )


def _check_no_other_instance_uses(ec2: Any, iam: Any, role_name: str, instance: InstanceFacts) -> None:
    """Skip when another instance of the region holds the role through any of its instance profiles."""
    profiles = {
        profile["Arn"]
        for page in iam.get_paginator("list_instance_profiles_for_role").paginate(RoleName=role_name)
        for profile in page["InstanceProfiles"]
    }
    sharing = sorted(
        {
            a["InstanceId"]
            for a in live_associations(ec2)
            if a["IamInstanceProfile"]["Arn"] in profiles and a["InstanceId"] != instance.instance_id
        }
    )
    if sharing:
        shown = ", ".join(sharing[:5]) + (f" and {len(sharing) - 5} more" if len(sharing) > 5 else "")
        raise Skip(
            f"role {role_name} is also used by {len(sharing)} other instance(s) ({shown}): revoking its sessions would "
            "cut them off too; revoke by hand (IAM console, role, Revoke active sessions) if that is acceptable"
        )


def _trusted_principals(document: Any) -> set[tuple[str, str]]:
    """(kind, principal) pairs the trust policy allows to assume the role; empty when unreadable."""
    document = policy_document(document)
    if document is None:
        return set()
    statements = document.get("Statement", [])
    found: set[tuple[str, str]] = set()
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal", {})
        if not isinstance(principal, dict):
            found.add(("AWS", str(principal)))  # "*"
            continue
        for kind, values in principal.items():
            for value in values if isinstance(values, list) else [values]:
                found.add((kind, str(value)))
    return found
