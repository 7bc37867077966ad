"""Where a finding is acted on: the responder's own account, or a member account through its role.

In an AWS Organization the GuardDuty delegated administrator receives every member account's
findings (README, "Across an AWS Organization"). The responder keeps its state, messages and Jira credentials at
home, and acts on the instance in the finding's account (`detail.accountId`) through a role there
that trusts only the responder's role, with an external id. Credentials are assumed once per
account and refreshed before they expire while the container is warm.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import boto3
import botocore.session
from botocore.credentials import CredentialProvider, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from .aws_errors import describe_error
from .clients import AwsClients
from .isolation import GroupDirectory, GroupRegistry

logger = logging.getLogger(__name__)

PERMISSIONS = ("sts:AssumeRole",)

SESSION_NAME = "guardduty-responder"
SESSION_SECONDS = 3600


class AccountAccessError(RuntimeError):
    """The responder cannot act in the finding's account (no role configured, or the role refused)."""


@dataclass(frozen=True)
class Estate:
    """One account's EC2, Auto Scaling and ELB clients, and its containment groups."""

    clients: AwsClients
    groups: GroupDirectory
    role_arn: str | None = None


class Estates:
    def __init__(
        self,
        home: AwsClients,
        *,
        home_account_id: str,
        member_role_name: str,
        member_role_path: str = "/",
        external_id: str,
        registry: GroupRegistry,
    ) -> None:
        self._home = home
        self._registry = registry
        self._home_account_id = home_account_id
        self._member_role_name = member_role_name
        self._member_role_path = member_role_path
        self._external_id = external_id
        self.home = Estate(home, GroupDirectory(home.lazy("ec2"), registry, lambda: self.home_account_id))
        self._members: dict[str, Estate] = {}
        self._lock = threading.Lock()

    @property
    def home_account_id(self) -> str:
        """The responder's own account: from the configuration, else asked of STS once."""
        if not self._home_account_id:
            self._home_account_id = self._home.sts.get_caller_identity()["Account"]
        return self._home_account_id

    def for_account(self, account_id: str) -> Estate:
        """The estate a finding of `account_id` is acted on in; AccountAccessError when there is none."""
        if not self._member_role_name:
            # Single-account deployment: only the responder's own account (asked of STS if not configured).
            if account_id == self.home_account_id:
                return self.home
            raise AccountAccessError(
                f"the finding is from account {account_id}, but this responder acts only in its own account "
                f"{self.home_account_id} (set member_role_name to act in member accounts)"
            )
        if account_id == self.home_account_id:
            return self.home
        known = self._members.get(account_id)
        if known is not None:
            return known
        with self._lock:
            known = self._members.get(account_id)
            if known is not None:
                return known
            role_arn = (
                f"arn:{self._home.partition}:iam::{account_id}:role{self._member_role_path}{self._member_role_name}"
            )
            credentials = self._assume(role_arn)  # eager: a refusal is reported here, clearly
            clients = AwsClients(_session_with(credentials, self._home.region))
            estate = Estate(clients, GroupDirectory(clients.lazy("ec2"), self._registry, account_id), role_arn)
            self._members[account_id] = estate
            logger.info("assumed member role", extra={"account_id": account_id, "role_arn": role_arn})
            return estate

    def forget(self, account_id: str) -> None:
        """Drop a member account's credentials: the next finding of that account assumes its role again."""
        with self._lock:
            self._members.pop(account_id, None)

    def _assume(self, role_arn: str) -> RefreshableCredentials:
        def fetch() -> dict[str, str]:
            try:
                response = self._home.sts.assume_role(
                    RoleArn=role_arn,
                    RoleSessionName=SESSION_NAME,
                    ExternalId=self._external_id,
                    DurationSeconds=SESSION_SECONDS,
                )
            except (ClientError, BotoCoreError) as error:
                account = role_arn.split(":")[4]
                raise AccountAccessError(
                    f"cannot act in account {account}: assuming {role_arn} failed: {describe_error(error)}"
                ) from error
            issued = response["Credentials"]
            return {
                "access_key": issued["AccessKeyId"],
                "secret_key": issued["SecretAccessKey"],
                "token": issued["SessionToken"],
                "expiry_time": issued["Expiration"].isoformat(),
            }

        return RefreshableCredentials.create_from_metadata(fetch(), refresh_using=fetch, method="sts-assume-role")


class _AssumedRole(CredentialProvider):
    METHOD = "sts-assume-role"

    def __init__(self, credentials: RefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> RefreshableCredentials:
        return self._credentials


def _session_with(credentials: RefreshableCredentials, region: str | None) -> boto3.Session:
    core = botocore.session.Session()
    core.get_component("credential_provider").insert_before("env", _AssumedRole(credentials))
    return boto3.Session(botocore_session=core, region_name=region)
