"""Credential findings: take the role away from the instance and void the sessions already issued.

`UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.*` means the instance role's temporary
credentials are in someone else's hands. Removing the instance profile stops the instance getting
more (the isolation group does not: the instance metadata service is not behind security groups),
and a deny-all inline policy conditioned on `aws:TokenIssueTime` voids every session of the role
issued before the moment of revocation, which is what the IAM console's "Revoke active sessions"
does (the policy name is the console's too, so either way a later revocation replaces the earlier
one). Each function is one recorded step; they run in this order, the revocation after the profile
is gone, so that no session issued in between survives.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from . import utc_timestamp
from .finding import ExfiltratedCredentials
from .isolation import InstanceFacts
from .steps import StepSkipped as Skip

PROFILE_PERMISSIONS = (
    "ec2:DescribeIamInstanceProfileAssociations",
    "ec2:DisassociateIamInstanceProfile",
    "iam:GetInstanceProfile",
)
REVOKE_PERMISSIONS = ("iam:PutRolePolicy",)
PERMISSIONS = PROFILE_PERMISSIONS + REVOKE_PERMISSIONS

REVOKE_POLICY_NAME = "AWSRevokeOlderSessions"
_LIVE = ("associating", "associated")


def remove_instance_profile(ec2: Any, iam: Any, instance: InstanceFacts) -> tuple[str, dict]:
    """Disassociate the instance profile, recording which one it was and its roles.

    The roles are what the revocation may touch: the role a finding names is revoked only when
    it is the one this instance really held.
    """
    live = [a for a in _associations(ec2, instance.instance_id) if a.get("State") in _LIVE]
    if not live:
        return "no instance profile associated", {"removed_instance_profiles": [], "profile_roles": []}
    profiles = sorted({a["IamInstanceProfile"]["Arn"] for a in live})
    roles = sorted({role["RoleName"] for arn in profiles for role in _profile(iam, arn)["Roles"]})
    for association in live:
        ec2.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])
    return (
        f"instance profile removed: {', '.join(profiles)} (role {', '.join(roles) or 'none'})",
        {"removed_instance_profiles": profiles, "profile_roles": roles},
    )


def revoke_older_sessions(
    ec2: Any,
    iam: Any,
    instance: InstanceFacts,
    credentials: ExfiltratedCredentials,
    *,
    profiles: Iterable[str],
    profile_roles: Iterable[str],
    protected: frozenset[str],
    now: float,
) -> tuple[str, dict]:
    """Deny everything to the role's sessions issued before `now`; sessions issued later are unaffected.

    Refused (recorded as skipped, for a person) when the role is not the one the instance held,
    when it is the responder's own, or when other instances use the same profile: their current
    sessions were issued before now too, and would lose their access with the stolen ones.
    """
    role = credentials.role_name
    if role in protected:
        raise Skip(f"role {role} is the responder's own: its sessions are not revoked")
    if role not in set(profile_roles):
        raise Skip(
            f"role {role} named by the finding is not the role of {instance.instance_id}'s instance profile: "
            "revoke its sessions by hand if it was stolen"
        )
    profiles = set(profiles)
    sharing = sorted(
        {
            a["InstanceId"]
            for a in _associations(ec2)
            if a.get("State") in _LIVE and a["IamInstanceProfile"]["Arn"] in profiles and a["InstanceId"] != instance.instance_id
        }
    )
    if sharing:
        shown = ", ".join(sharing[:5]) + (f" and {len(sharing) - 5} more" if len(sharing) > 5 else "")
        raise Skip(
            f"role {role} is also used by {len(sharing)} other instance(s) ({shown}): revoking its sessions would "
            "cut them off too; revoke by hand (IAM console, role, Revoke active sessions) if that is acceptable"
        )
    cutoff = utc_timestamp(now)
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
    iam.put_role_policy(RoleName=role, PolicyName=REVOKE_POLICY_NAME, PolicyDocument=json.dumps(policy))
    return (
        f"sessions of role {role} issued before {cutoff} revoked ({REVOKE_POLICY_NAME})",
        {"sessions_revoked_before": cutoff, "revoked_role": role},
    )


def _associations(ec2: Any, instance_id: str | None = None) -> list[dict[str, Any]]:
    filters = [{"Name": "instance-id", "Values": [instance_id]}] if instance_id else []
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = ec2.describe_iam_instance_profile_associations(Filters=filters, **({"NextToken": token} if token else {}))
        found.extend(page["IamInstanceProfileAssociations"])
        token = page.get("NextToken")
        if not token:
            return found


def _profile(iam: Any, arn: str) -> dict[str, Any]:
    return iam.get_instance_profile(InstanceProfileName=arn.rsplit("/", 1)[-1])["InstanceProfile"]
