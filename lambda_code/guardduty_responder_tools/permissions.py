"""Every IAM action the responder's code calls, gathered from the modules that call them.

Each module that talks to AWS declares its actions in a `PERMISSIONS` tuple next to the calls; the
Terraform role policies must grant exactly these sets (a test compares them). The estate actions
are done in the finding's account (the responder's own, or a member account through the member
role); the home actions only in the responder's own account.
"""

from __future__ import annotations

from collections.abc import Iterable

from guardduty_responder import (
    accounts,
    credentials,
    evidence,
    evidence_store,
    guardduty,
    identity,
    isolation,
    jira,
    ledger,
    malware,
    notification,
    restore,
)

ESTATE_MODULES = (isolation, evidence, evidence_store, identity)
HOME_MODULES = (ledger, notification, jira, guardduty)
DECLARING_MODULES = ESTATE_MODULES + (credentials,) + HOME_MODULES + (accounts,)


def estate_actions(
    identity_contained: bool = True, *, metadata: bool = False, whole_role: bool = False, snapshot_lock: bool = False
) -> frozenset[str]:
    """Actions on the instance's account.

    `identity_contained`: the instance profile removed and the instance's credentials revoked (on every isolation,
    or for credential findings); `metadata`: the metadata service turned off; `whole_role`: a credential finding
    revokes every older session of its role; `snapshot_lock`: the evidence snapshots are locked.
    """
    actions = [action for module in ESTATE_MODULES for action in module.PERMISSIONS]
    actions += identity.IDENTITY_PERMISSIONS if identity_contained else ()
    actions += identity.METADATA_PERMISSIONS if metadata else ()
    actions += credentials.PERMISSIONS if whole_role else ()
    actions += evidence.LOCK_PERMISSIONS if snapshot_lock else ()
    return frozenset(actions)


def home_actions(member_accounts: bool = False, *, malware_scan: bool = False) -> frozenset[str]:
    """Actions on the responder's own state, messages, secret and evidence bucket; with `member_accounts`, assuming
    member roles; with `malware_scan`, scanning isolated instances (and what IAM asks for those calls besides)."""
    modules = HOME_MODULES + ((accounts,) if member_accounts else ())
    actions = {action for module in modules for action in module.PERMISSIONS} | set(evidence_store.BUCKET_PERMISSIONS)
    return frozenset(actions | (iam_actions_of(malware.PERMISSIONS) if malware_scan else set()))


def release_actions() -> frozenset[str]:
    """What a person's release calls besides the groups' move: never the function's."""
    return frozenset(restore.PERMISSIONS)


def required_actions() -> frozenset[str]:
    everything = estate_actions(True, metadata=True, whole_role=True, snapshot_lock=True)
    return everything | home_actions(True, malware_scan=True) | release_actions()


def iam_actions_of(calls: Iterable[str]) -> frozenset[str]:
    """The IAM actions that authorise these API calls (a DynamoDB transaction: the actions of its parts; associating
    an instance profile: passing its role too)."""
    known = {
        **ledger.IAM_ACTIONS_OF_CALLS,
        **restore.IAM_ACTIONS_OF_CALLS,
        **evidence_store.IAM_ACTIONS_OF_CALLS,
        **malware.IAM_ACTIONS_OF_CALLS,
    }
    return frozenset(action for call in calls for action in known.get(call, (call,)))
