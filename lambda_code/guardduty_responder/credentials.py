"""Credential findings: take the role away from the instance and void the sessions already issued.

`UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.*` means the instance role's temporary
credentials are in someone else's hands. Isolating the instance stops new ones being fetched from
it; removing its instance profile stops the instance itself getting more; and a deny-all inline
policy conditioned on `aws:TokenIssueTime` voids every session of the role issued before now, which
is what the IAM console's "Revoke active sessions" does (the policy name is the console's too, so
either way a later revocation replaces the earlier one). Each function is one recorded step.
"""

from __future__ import annotations

import json
from typing import Any

from . import utc_timestamp
from .finding import ExfiltratedCredentials
from .isolation import InstanceFacts

PROFILE_PERMISSIONS = ("ec2:DescribeIamInstanceProfileAssociations", "ec2:DisassociateIamInstanceProfile")
REVOKE_PERMISSIONS = ("iam:PutRolePolicy",)
PERMISSIONS = PROFILE_PERMISSIONS + REVOKE_PERMISSIONS

REVOKE_POLICY_NAME = "AWSRevokeOlderSessions"


class CredentialStepError(RuntimeError):
    """A credential step refused to act (the role is the responder's own)."""


def remove_instance_profile(ec2: Any, instance: InstanceFacts) -> tuple[str, dict]:
    """Disassociate the instance profile, recording which one it was so a person can put it back."""
    associations = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance.instance_id]}]
    )["IamInstanceProfileAssociations"]
    live = [a for a in associations if a.get("State") in ("associating", "associated")]
    if not live:
        return "no instance profile associated", {}
    for association in live:
        ec2.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])
    profiles = sorted(a["IamInstanceProfile"]["Arn"] for a in live)
    return f"instance profile removed: {', '.join(profiles)}", {"removed_instance_profiles": profiles}


def revoke_older_sessions(iam: Any, credentials: ExfiltratedCredentials, *, now: float, protected: frozenset[str]) -> tuple[str, dict]:
    """Deny everything to the role's sessions issued before `now`; new sessions are unaffected."""
    if credentials.role_name in protected:
        raise CredentialStepError(f"refused to revoke the sessions of {credentials.role_name}: it is the responder's own role")
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
    iam.put_role_policy(RoleName=credentials.role_name, PolicyName=REVOKE_POLICY_NAME, PolicyDocument=json.dumps(policy))
    return (
        f"sessions of role {credentials.role_name} issued before {cutoff} revoked ({REVOKE_POLICY_NAME})",
        {"sessions_revoked_before": cutoff, "revoked_role": credentials.role_name},
    )
