"""Every IAM action the responder's code calls, gathered from the modules that call them.

Each module that talks to AWS declares its actions in a `PERMISSIONS` tuple next to the calls; the
Terraform role policy must grant exactly this set (a test compares the two).
"""

from __future__ import annotations

from . import evidence, isolation, ledger, notification, ticketing

DECLARING_MODULES = (isolation, evidence, ledger, notification, ticketing)


def required_actions() -> frozenset[str]:
    return frozenset(action for module in DECLARING_MODULES for action in module.PERMISSIONS)
