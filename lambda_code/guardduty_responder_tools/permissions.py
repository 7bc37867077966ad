"""Every IAM action the responder's code calls, gathered from the modules that call them.

Each module that talks to AWS declares its actions in a `PERMISSIONS` tuple next to the calls; the
Terraform role policies must grant exactly these sets (a test compares them). The estate actions
are done in the finding's account (the responder's own, or a member account through the member
role); the home actions only in the responder's own account.
"""

from __future__ import annotations

from collections.abc import Iterable

from guardduty_responder import accounts, credentials, evidence, guardduty, isolation, jira, ledger, notification

ESTATE_MODULES = (isolation, evidence)
HOME_MODULES = (ledger, notification, jira, guardduty)
DECLARING_MODULES = ESTATE_MODULES + (credentials,) + HOME_MODULES + (accounts,)


def estate_actions(credentials_contained: bool = False) -> frozenset[str]:
    """Actions on the instance's account; with `credentials_contained`, those of credential findings too."""
    modules = ESTATE_MODULES + ((credentials,) if credentials_contained else ())
    return frozenset(action for module in modules for action in module.PERMISSIONS)


def home_actions(member_accounts: bool = False) -> frozenset[str]:
    """Actions on the responder's own state, messages and secret; with `member_accounts`, assuming member roles."""
    modules = HOME_MODULES + ((accounts,) if member_accounts else ())
    return frozenset(action for module in modules for action in module.PERMISSIONS)


def required_actions() -> frozenset[str]:
    return frozenset(action for module in DECLARING_MODULES for action in module.PERMISSIONS)


def iam_actions_of(calls: Iterable[str]) -> frozenset[str]:
    """The IAM actions that authorise these API calls (a DynamoDB transaction: the actions of its parts)."""
    return frozenset(action for call in calls for action in ledger.IAM_ACTIONS_OF_CALLS.get(call, (call,)))
