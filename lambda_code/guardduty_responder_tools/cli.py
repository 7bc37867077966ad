"""The command line `guardduty-responder`: replay a finding, release or exempt an instance, list the ledger, a demo.

Against AWS it reads the same environment variables as the Lambda function (RESPONDER_TABLE and
the rest, see the README's configuration table), with credentials and region from the usual AWS
places or --profile / --region. Exit codes: 0 success, 1 the operation failed, 2 bad usage, input
or configuration.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import json
import logging
import os
import pathlib
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

PROG = "guardduty-responder"
_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
_FINDING_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# An exemption is for a known piece of work: renewed if it lasts longer, never left open-ended.
MAX_EXEMPTION_DAYS = 90

_EXIT_CODES = """exit codes:
  0  success
  1  the operation failed (containment error, a step left to retry, release refused, AWS refused)
  2  bad usage, input or configuration (unknown option, malformed event file, missing setting,
     unknown profile, no region or no credentials)"""

_ENVIRONMENT = """configuration (against AWS): the Lambda function's environment variables,
  RESPONDER_TABLE, RESPONDER_TOPIC_ARN, JIRA_SECRET_ARN, JIRA_PROJECT_KEY and the optional ones
  (see the README's Configuration table; `terraform output` names the table, topic and secret).
  `status`, `exempt`, `approve` and `reject` need only RESPONDER_TABLE."""


class UsageError(Exception):
    """The command cannot run as asked: bad option, bad input, missing configuration (exit 2)."""


class OperationFailed(Exception):
    """The command ran and its operation failed (exit 1)."""


# -- the parser ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Contain, preserve and report EC2 instances named in Amazon GuardDuty findings:\n"
        "the same code as the Lambda function, from a terminal.",
        epilog=f"{_ENVIRONMENT}\n\n{_EXIT_CODES}\n\nRun `{PROG} COMMAND --help` for a command's options.",
        formatter_class=formatter,
    )
    _add_global_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(
        name: str, summary: str, description: str, run: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=summary,
            description=description,
            epilog=_EXIT_CODES,
            formatter_class=formatter,
        )
        # Global options are accepted after the command too, as the AWS CLI accepts them.
        _add_global_options(sub, defaults=False)
        sub.set_defaults(run=run)
        return sub

    replay = command(
        "replay",
        "run the response to a saved EventBridge GuardDuty event",
        "Run the whole response (decide, claim, contain, preserve, Jira, SNS) for a saved EventBridge\n"
        '"GuardDuty Finding" event, as the Lambda function would. Against AWS this ISOLATES the\n'
        "instance the event names (set DRY_RUN=true to only record and notify). A finding the ledger\n"
        "already holds is a repeat: only its count is noted, as in the function.\n\n"
        "With --local it runs on an embedded AWS (moto, in this process) and the Jira stand-in on\n"
        "127.0.0.1, built for this one command and discarded when it ends: a VPC and an instance\n"
        "standing in for the event's instance (same network interfaces, group names and tags; the\n"
        "event is re-pointed at it). No account, no network.",
        _replay,
    )
    replay.add_argument(
        "event_file", metavar="EVENT_FILE", help="JSON file holding one EventBridge event ('-' reads standard input)"
    )

    release = command(
        "release",
        "put an isolated instance back on its original security groups",
        "Put every network interface of the instance back on the security groups saved before it\n"
        "was isolated, then the instance profile, the metadata options and the connection-tracking\n"
        "timeouts; mark its incident and findings released (later updates of those findings leave\n"
        "it alone), and comment on its Jira issue, listing each item restored. Refused (exit 1) when\n"
        "the responder holds no saved groups for the instance; refused, with nothing moved, when a\n"
        "saved group is one of the responder's own, of another VPC than its interface's, or no longer\n"
        "exists. An item that fails after the groups are back is listed, and the exit code is 1.\n\n"
        "The credentials issued to the instance before its isolation stay revoked unless\n"
        "--restore-credentials is given. The instance stays in Standby in its Auto Scaling group and\n"
        "out of its target groups unless --return-to-service is given. Termination protection stays\n"
        "on and the snapshots are kept.\n\n"
        "--local does not apply: the embedded AWS lives only as long as one command, so it would hold\n"
        f"nothing to release. `{PROG} demo` shows a release on the embedded AWS.",
        _release,
    )
    release.add_argument("instance_id", metavar="INSTANCE_ID", help="the instance to release, e.g. i-0123456789abcdef0")
    release.add_argument(
        "--released-by",
        metavar="NAME",
        help="who releases it, for the record and the Jira comment (default: your user name)",
    )
    release.add_argument(
        "--restore-credentials",
        action="store_true",
        help="also remove the revocation of the credentials issued to the instance before its isolation",
    )
    release.add_argument(
        "--return-to-service",
        action="store_true",
        help="also take the instance out of Auto Scaling standby and register it in its target groups again",
    )

    command(
        "sweep",
        "act on approvals and resume unfinished findings (what the schedule runs)",
        "Act on the decisions about findings awaiting approval (approved ones are isolated, rejections\n"
        "and timeouts settled, Jira statuses read when JIRA_APPROVAL_STATUS is set), then resume, from\n"
        "GuardDuty's own copy, every finding the ledger holds as unfinished whose lease has run out: an\n"
        "invocation that timed out or failed, and whose retries are spent. The same code the deployment's\n"
        "schedule invokes every minute by default. Against AWS this ISOLATES the instances those\n"
        "findings name, as their first delivery would have, and those approved. Exit 1 when a finding\n"
        "could not be finished (it stays unfinished for the next sweep).\n\n"
        "--local does not apply: the embedded AWS lives only as long as one command.",
        _sweep,
    )
    prepare = command(
        "prepare",
        "create the containment groups in every VPC now, so a first incident there pays nothing for them",
        "Find or create the two containment groups (untracking, isolation) in every VPC of the account and\n"
        "region your credentials and --region name (or of each --account, through the member role, and\n"
        "each of --regions), and record them in the responder's ledger (RESPONDER_TABLE, in that region),\n"
        "exactly as the first containment in a VPC would: that containment then makes no group-creating\n"
        "call before it moves the interfaces. Groups already recorded are checked (a rule added by hand is\n"
        "removed). Run it again when VPCs are added. Exit 1 when an account or a VPC could not be prepared.\n\n"
        "--local does not apply: the embedded AWS lives only as long as one command.",
        _prepare,
    )
    prepare.add_argument(
        "--vpc", action="append", metavar="VPC_ID", help="only this VPC (repeatable; default: every VPC)"
    )
    prepare.add_argument(
        "--account",
        action="append",
        metavar="ACCOUNT_ID",
        help="an account to prepare (repeatable; default: your own); a member account through the member role "
        "(MEMBER_ROLE_NAME, MEMBER_ROLE_EXTERNAL_ID), which your role must be allowed to assume",
    )
    prepare.add_argument(
        "--regions",
        action="append",
        metavar="NAME",
        help="a region to prepare, with the ledger of that region (repeatable; default: the one --region names)",
    )
    command(
        "check-jira",
        "check, before the first incident, that Jira takes the issues the responder files",
        "Read the Jira secret (JIRA_SECRET_ARN) and check what an incident needs of Jira: the secret's\n"
        "form and the deployment (Cloud or Data Center: what the secret says, else what Jira's\n"
        "serverInfo says), a search of the project through the endpoint that deployment answers, the\n"
        "issue type (JIRA_ISSUE_TYPE) in the project's create metadata, the fields the responder sets\n"
        "(summary, description, priority, labels) on its create screen, and the priorities it files\n"
        "with in the project's priority scheme. Each check is PASS or FAIL with the remedy; exit 1 on\n"
        "any FAIL. Changes nothing in Jira.\n\n"
        "With --local it checks the embedded stack's Jira stand-in (Jira Cloud).",
        _check_jira,
    )
    from . import doctor

    doctor.register(command)
    exempt = command(
        "exempt",
        "exempt an instance from isolation in the responder's ledger, or remove its exemption",
        "Write an exemption for the instance in the responder's ledger (RESPONDER_TABLE). Until --until,\n"
        "findings about it are recorded, ticketed and announced as for an instance carrying the\n"
        "exemption tag, and nothing is isolated; each issue and message says who exempted it, why and\n"
        "until when. Unlike the tag, the instance's own role cannot write it: only the function's role\n"
        "and operator_role_arns may write the ledger. The exemption names you (your STS caller\n"
        "identity); a new one replaces the one before; DynamoDB's TTL removes it a day after it ends.\n"
        "--remove takes it away at once. An instance isolated already stays isolated (see `release`).\n\n"
        "--local does not apply: the embedded AWS lives only as long as one command.",
        _exempt,
    )
    exempt.add_argument("instance_id", metavar="INSTANCE_ID", help="the instance to exempt, e.g. i-0123456789abcdef0")
    exempt.add_argument(
        "--reason", metavar="TEXT", help="why it is exempt (required unless --remove); shown in every issue it holds"
    )
    exempt.add_argument(
        "--until",
        metavar="TIME",
        help=f"when the exemption ends: ISO-8601 with its time zone, e.g. 2026-12-01T18:00:00Z (required unless "
        f"--remove; at most {MAX_EXEMPTION_DAYS} days ahead)",
    )
    exempt.add_argument("--remove", action="store_true", help="remove the instance's exemption now")

    isolate = command(
        "isolate",
        "contain an instance you name, as a finding would (no GuardDuty finding, no approval)",
        "Run the same response as for a finding on an instance you name, under your own credentials:\n"
        "containment, evidence, the ledger's record, a Jira issue and a message, release as for any\n"
        "incident (`release`). It is recorded as a manual incident with you as its source (--by and your\n"
        "STS caller identity) and the reason; nothing is confirmed with GuardDuty and no response rule\n"
        "applies; it does not wait for approval (you are the approver). The circuit breaker counts it and\n"
        "never refuses it. Refused (exit 1) while the ledger exempts the instance. With DRY_RUN=true it\n"
        "only records and says what it would do. --account names a member account (through the member\n"
        "role, which your role must be allowed to assume); by default the responder's own.\n\n"
        "--local does not apply: the embedded AWS lives only as long as one command.",
        _isolate,
    )
    isolate.add_argument("instance_id", metavar="INSTANCE_ID", help="the instance to isolate, e.g. i-0123456789abcdef0")
    isolate.add_argument("--reason", metavar="TEXT", required=True, help="why, for the record, issue and message")
    isolate.add_argument("--by", metavar="NAME", help="who isolates it, for the record (default: your user name)")
    isolate.add_argument("--account", metavar="ACCOUNT_ID", help="the instance's account (default: the responder's)")

    drill = command(
        "drill",
        "contain and release an instance tagged for drills, checking each step, with its timings",
        "Prove the responder works: contain an instance tagged guardduty-responder-drill=true as `isolate`\n"
        "would (the function's own code, under your credentials: the function takes no request from a\n"
        "person), check from AWS what each recorded step claims (interfaces on the isolation group only,\n"
        "snapshots tagged with the incident, instance profile removed, record, Jira issue, message), then\n"
        "release it with its credentials and service, put back its termination protection, shutdown\n"
        "behaviour and volumes' delete on termination, and check it is as it began. Prints each step:\n"
        "PASS or FAIL, seconds, detail. The reason, record, issue and message say DRILL. The release is\n"
        "tried whatever failed before it; exit 1 when any step fails (a failed release is named).\n"
        "Refused (exit 1, nothing changed) without the drill tag, with the exemption tag or a ledger\n"
        "exemption, while the responder holds the instance isolated, or with DRY_RUN=true.\n\n"
        "The snapshots and the incident's evidence stay (they may be locked), and so do the Jira issue\n"
        "and the responder's tags on the instance. --local does not apply.",
        _drill,
    )
    drill.add_argument("--instance", metavar="INSTANCE_ID", required=True, help="the instance tagged for drills")
    drill.add_argument("--by", metavar="NAME", help="who runs the drill, for the record (default: your user name)")

    for verb, summary, run in (
        ("approve", "approve the isolation of a finding that awaits approval", _approve),
        ("reject", "reject the isolation of a finding that awaits approval", _reject),
    ):
        decision = command(
            verb,
            summary,
            f"{'Approve' if verb == 'approve' else 'Reject'} the isolation a response rule held for a person's decision"
            " (action\n"
            '"approve"). The decision is written to the finding\'s approval item in the ledger (RESPONDER_TABLE)\n'
            "under your own credentials, with your STS caller identity and --by. The function acts on it at its\n"
            + (
                "next sweep (sweep_interval_minutes), with its own role: it isolates the instance, under the\n"
                "circuit breaker and the exemptions as any isolation, comments on the issue and sends a message.\n"
                if verb == "approve"
                else "next sweep: it comments on the issue and sends a message; nothing is changed on the instance.\n"
            )
            + "Refused (exit 1) when the finding does not await approval: unknown, approved or rejected already\n"
            "(an approval is honoured once), or timed out. The approver policy (Terraform output\n"
            "approver_policy_json) allows this write and nothing else of the ledger.\n\n"
            "--local does not apply: the embedded AWS lives only as long as one command.",
            run,
        )
        decision.add_argument("finding_id", metavar="FINDING_ID", help="the GuardDuty finding id awaiting approval")
        decision.add_argument("--by", metavar="NAME", help="who decides, for the record (default: your user name)")
        if verb == "reject":
            decision.add_argument("--reason", metavar="TEXT", help="why, for the record, the issue and the message")

    status = command(
        "status",
        "list the findings and instances the ledger knows, with each step's state",
        "List the current exemptions (instance, until, by whom, why), the instances the responder\n"
        "isolated (state, groups to restore, Jira issue) and the findings it recorded (decision, status,\n"
        "count, each step's state). Reads the DynamoDB table RESPONDER_TABLE; changes nothing.\n\n"
        "--local does not apply: the embedded AWS lives only as long as one command. `replay --local`\n"
        "shows the record of the finding it replays.",
        _status,
    )
    status.add_argument("--instance", metavar="INSTANCE_ID", help="only this instance and its findings")

    demo = command(
        "demo",
        "run the embedded demo (what `make demo` runs)",
        "Build a small estate on an embedded AWS (moto, in this process) with the Jira stand-in on\n"
        "127.0.0.1, deliver several findings through the Lambda handler, show what each did and a\n"
        "summary, then release one instance. No account, no network. Always local: --profile and\n"
        "--region do not apply.",
        _demo,
    )
    demo.add_argument(
        "--log-file",
        metavar="PATH",
        help="where the function's JSON logs go (default: a new file in the temporary directory)",
    )
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    def default(value: Any) -> Any:
        # On a command, an option left out must not overwrite the value given before the command.
        return value if defaults else argparse.SUPPRESS

    group = parser.add_argument_group("global options")
    group.add_argument("--profile", metavar="NAME", default=default(None), help="AWS named profile to use")
    group.add_argument("--region", metavar="NAME", default=default(None), help="AWS region, e.g. eu-west-1")
    group.add_argument(
        "--output",
        choices=("table", "json"),
        default=default("table"),
        help="table for people (default), json for scripts",
    )
    group.add_argument(
        "--local",
        action="store_true",
        default=default(False),
        help="use an embedded AWS (moto) and the local Jira stand-in instead of an AWS account",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show the responder's JSON logs down to DEBUG on standard error, and tracebacks",
    )


# -- the commands -------------------------------------------------------------------------------------------


def _replay(args: argparse.Namespace) -> int:
    from guardduty_responder.finding import MalformedFindingError, parse_finding

    from .events import NotAFinding, as_event

    try:
        event = as_event(_read_event(args.event_file))
        finding = parse_finding(event)
    except (NotAFinding, MalformedFindingError) as error:
        raise UsageError(f"{args.event_file}: {error}") from error
    if args.local:
        _refuse_profile_with_local(args)
        if finding.group_instances:
            raise UsageError(
                f"--local stands in one instance for the event's; this group finding names "
                f"{len(finding.group_instances)}: replay it against AWS, or see `{PROG} demo`, which contains a group"
            )
        return _replay_locally(args, event, _local_region(event, finding.region))

    from guardduty_responder.clients import AwsClients
    from guardduty_responder.responder import Responder

    session = _session(args)
    if session.region_name != finding.region:
        raise UsageError(
            f"the finding is from {finding.region} but the command runs against {session.region_name}: "
            f"pass --region {finding.region}"
        )
    responder = Responder(_settings(), AwsClients(session))
    summary = _respond(responder, event)
    _print_replay(args, summary, responder, extra={})
    return EXIT_OK


def _replay_locally(args: argparse.Namespace, event: Mapping[str, Any], region: str) -> int:
    from guardduty_responder.clients import AwsClients
    from guardduty_responder.finding import parse_finding
    from guardduty_responder.responder import Responder

    from .embedded import point_event_at

    finding = parse_finding(event)
    with _embedded(region) as aws:
        vpc_id, subnet_id = aws.create_network()
        stand_in = _stand_in_instance(aws, vpc_id, subnet_id, event, finding.tags)
        pointed = point_event_at(event, aws.describe(stand_in))
        # The replayed finding is one GuardDuty raised: its stand-in holds it, so it is confirmed.
        aws.guardduty.add(pointed["detail"])
        before = _live_groups(aws.describe(stand_in))
        responder = Responder(_settings(), AwsClients(region=region))
        summary = _respond(responder, pointed)
        messages = aws.messages()
        extra = {
            "local": {
                "stand_in_instance_id": stand_in,
                "event_instance_id": finding.instance_id,
                "groups_before": before,
                "groups_after": _live_groups(aws.describe(stand_in)),
                "jira_issues": sorted(aws.jira.issues),
                "message_subjects": [message.get("Subject") for message in messages],
            }
        }
        _print_replay(args, summary, responder, extra)
    return EXIT_OK


def _stand_in_instance(
    aws: Any, vpc_id: str, subnet_id: str, event: Mapping[str, Any], finding_tags: Sequence[tuple[str, str]]
) -> str:
    """An instance like the event's: its interfaces on groups of the same names, its tags.

    The live tags decide (the exemption tag), so they must be the event's for the replay to decide
    as it would have on the real instance.
    """
    default_group = aws.ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    group_ids = {"default": default_group}
    groups_per_eni: list[list[str]] = []
    details = event["detail"]["resource"].get("instanceDetails")
    reported = details.get("networkInterfaces") if isinstance(details, Mapping) else None
    for interface in reported if isinstance(reported, list) else []:
        groups = interface.get("securityGroups") if isinstance(interface, Mapping) else None
        names = [str(g.get("groupName") or g.get("groupId")) for g in groups or [] if isinstance(g, Mapping)]
        for name in names:
            if name not in group_ids:
                group_ids[name] = aws.security_group(vpc_id, name[:255], "as named in the replayed event")
        groups_per_eni.append([group_ids[name] for name in names] or [default_group])
    tags = {key: value for key, value in finding_tags if not key.lower().startswith("aws:")}
    return aws.launch(
        subnet_id,
        name=tags.pop("Name", "replayed-instance"),
        groups_per_eni=groups_per_eni or [[default_group]],
        tags=tags,
    )


def _local_region(event: Mapping[str, Any], finding_region: str) -> str:
    """The region the embedded AWS plays: the envelope's, which the responder checks, else the finding's."""
    region = event.get("region")
    return region if isinstance(region, str) and re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region) else finding_region


def _respond(responder: Any, event: Mapping[str, Any]) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    from guardduty_responder.accounts import AccountAccessError
    from guardduty_responder.isolation import ContainmentError
    from guardduty_responder.ledger import LedgerError
    from guardduty_responder.responder import IncompleteResponseError

    try:
        return responder.respond(dict(event))
    except IncompleteResponseError as error:
        raise OperationFailed(f"contained, but a later step failed (replay again to finish it): {error}") from error
    except ContainmentError as error:
        raise OperationFailed(f"containment failed: {error}") from error
    except (LedgerError, AccountAccessError, ClientError, BotoCoreError) as error:
        raise OperationFailed(str(error)) from error


def _print_replay(
    args: argparse.Namespace, summary: Mapping[str, Any], responder: Any, extra: Mapping[str, Any]
) -> None:
    from .terminal import key_values

    record = responder.ledger.get_finding(summary["finding_id"])
    steps = {}
    if record is not None:
        steps = {
            name: {"status": state.status, "detail": state.detail, "error": state.error}
            for name, state in sorted(record.steps.items(), key=lambda item: _step_rank(item[0]))
        }
    if args.output == "json":
        _print_json({**summary, "recorded_steps": steps, **extra})
        return
    decision = summary.get("decision", "")
    if summary.get("reason"):
        verdict = summary["action"] if summary["action"] == decision else f"{summary['action']} ({decision})"
        decision = f"{verdict}: {summary['reason']}"
    pairs: list[tuple[str, Any]] = [
        ("finding", summary["finding_id"]),
        ("type", summary.get("finding_type")),
        ("instance", summary["instance_id"] or None),
        *([("instances", summary["members"] or summary["instances"])] if "members" in summary else []),
        ("outcome", summary["outcome"]),
        ("decision", decision),
        (
            "steps",
            [
                f"{name}: {s['status']}" + (f" - {s['detail'] or s['error']}" if s["detail"] or s["error"] else "")
                for name, s in steps.items()
            ],
        ),
        ("snapshots", summary.get("snapshot_ids") or None),
        ("Jira", summary.get("jira_key")),
    ]
    local = extra.get("local")
    if local:
        pairs += [
            (
                "embedded AWS",
                f"{local['stand_in_instance_id']} stood in for {local['event_instance_id']}; discarded at exit",
            ),
            ("groups before", _groups_lines(local["groups_before"])),
            ("groups after", _groups_lines(local["groups_after"])),
            ("messages", local["message_subjects"] or None),
        ]
    print(key_values(pairs))


def _release(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from guardduty_responder.accounts import AccountAccessError
    from guardduty_responder.clients import AwsClients
    from guardduty_responder.isolation import ContainmentError
    from guardduty_responder.ledger import LedgerError
    from guardduty_responder.responder import ReleaseError, Responder

    from .terminal import key_values

    if not _INSTANCE_ID.fullmatch(args.instance_id):
        raise UsageError(f"{args.instance_id!r} is not an instance id (i- followed by 8 to 17 hex digits)")
    if args.local:
        raise UsageError(
            f"--local does not apply to release: the embedded AWS lives only as long as one command. "
            f"`{PROG} demo` shows a release."
        )
    # In a member account a person acts through the narrow release role, not the responder's role.
    responder = Responder(_settings().for_release(), AwsClients(_session(args)))
    try:
        result = responder.release(
            args.instance_id,
            released_by=args.released_by or _user_name(),
            restore_credentials=args.restore_credentials,
            return_to_service=args.return_to_service,
        )
    except ReleaseError as error:
        raise OperationFailed(f"release refused: {error}") from error
    except AccountAccessError as error:
        raise OperationFailed(
            f"{error} (list your role in operator_role_arns of modules/member-role in that account)"
        ) from error
    except ContainmentError as error:
        raise OperationFailed(f"restoring the groups failed (nothing recorded as released): {error}") from error
    except (LedgerError, ClientError, BotoCoreError) as error:
        raise OperationFailed(str(error)) from error
    if args.output == "json":
        _print_json(result)
    else:
        print(
            key_values(
                [
                    ("instance", result["instance_id"]),
                    ("restored groups", _groups_lines(result["restored_groups"])),
                    ("restored", result["restored"]),
                    ("findings released", result["findings"]),
                    ("Jira", result["jira_key"]),
                    ("Jira comment", result["jira_comment"]),
                    ("still to do by hand", "turn termination protection off, if the instance goes back into service"),
                ]
            )
        )
    if result["failed"]:
        raise OperationFailed("released, but not everything was restored: " + "; ".join(result["failed"]))
    return EXIT_OK


def _sweep(args: argparse.Namespace) -> int:
    from guardduty_responder.clients import AwsClients
    from guardduty_responder.responder import Responder

    from .terminal import key_values

    if args.local:
        raise UsageError("--local does not apply to sweep: the embedded AWS lives only as long as one command.")
    result = Responder(_settings(), AwsClients(_session(args))).sweep()
    if args.output == "json":
        _print_json(result)
    else:
        print(key_values([(key.replace("_", " "), value) for key, value in result.items()]))
    if result.get("error"):
        raise OperationFailed(f"the sweep could not list the unfinished findings: {result['error']}")
    return EXIT_FAILED if result["failed"] or result.get("approvals_failed") else 0


def _prepare(args: argparse.Namespace) -> int:
    if args.local:
        raise UsageError("--local does not apply to prepare: the embedded AWS lives only as long as one command.")
    for account in args.account or []:
        if not re.fullmatch(r"\d{12}", account):
            raise UsageError(f"--account {account!r} is not a 12-digit account id")
    results = [row for region in _regions(args) for row in _prepare_region(args, region)]
    if args.output == "json":
        _print_json({"vpcs": results})
    else:
        from .terminal import table

        rows = [
            [r["account"], r["region"], r["vpc_id"], r["state"], r.get("untracking", ""), r.get("isolation", "")]
            for r in results
        ]
        print(f"{len(results)} VPC(s)")
        widths = [12, 14, 24, 18, 24, 60]
        print(table(["account", "region", "VPC", "groups", "untracking", "isolation"], rows, max_widths=widths))
    missing = sorted(set(args.vpc or []) - {r["vpc_id"] for r in results})
    if missing:
        raise OperationFailed(f"no such VPC in the accounts and regions given: {', '.join(missing)}")
    return EXIT_FAILED if any(r["state"] == "failed" for r in results) else EXIT_OK


def _regions(args: argparse.Namespace) -> list[str]:
    return list(dict.fromkeys(args.regions or [_session(args).region_name]))


def _prepare_region(args: argparse.Namespace, region: str) -> list[dict[str, str]]:
    """Every VPC of each account asked for, in one region: your own account with your credentials, a member
    account through the member role (MEMBER_ROLE_NAME, MEMBER_ROLE_EXTERNAL_ID), as the function acts there."""
    from guardduty_responder.accounts import Estates
    from guardduty_responder.clients import AwsClients
    from guardduty_responder.ledger import Ledger
    from guardduty_responder.steps import STEP_ERRORS

    args.region = region
    clients = AwsClients(_session(args))
    ledger = Ledger(clients.dynamodb, _table_name(), retention_days=1)
    env = os.environ
    estates = Estates(
        clients,
        home_account_id="",
        member_role_name=env.get("MEMBER_ROLE_NAME", "").strip(),
        member_role_path=env.get("MEMBER_ROLE_PATH", "").strip() or "/",
        external_id=env.get("MEMBER_ROLE_EXTERNAL_ID", "").strip(),
        registry=ledger,
    )
    rows = []
    for account in args.account or [estates.home_account_id]:
        try:
            estate = estates.for_account(account)
        except STEP_ERRORS as error:  # AccountAccessError among them: the member role refused
            rows.append({"account": account, "region": region, "vpc_id": "-", "state": "failed", "error": str(error)})
            continue
        rows += _prepare_vpcs(args, estate, ledger, account, region)
    return rows


def _prepare_vpcs(
    args: argparse.Namespace, estate: Any, ledger: Any, account: str, region: str
) -> list[dict[str, str]]:
    from guardduty_responder.steps import STEP_ERRORS

    place = {"account": account, "region": region}
    try:
        # Each VPC's default group names it: the member role may describe groups, not VPCs.
        pages = estate.clients.ec2.get_paginator("describe_security_groups").paginate(
            Filters=[{"Name": "group-name", "Values": ["default"]}]
        )
        vpcs = sorted({group["VpcId"] for page in pages for group in page["SecurityGroups"] if group.get("VpcId")})
    except STEP_ERRORS as error:
        return [{**place, "vpc_id": "-", "state": "failed", "error": f"listing the VPCs failed: {error}"}]
    rows = []
    for vpc in [vpc for vpc in vpcs if not args.vpc or vpc in args.vpc]:
        try:
            known = ledger.recorded_groups(account, vpc)
            groups = estate.groups.groups_for(vpc)
        except STEP_ERRORS as error:
            rows.append({**place, "vpc_id": vpc, "state": "failed", "error": str(error)})
            continue
        state = "recorded already" if known else "created"
        rows.append(
            {
                **place,
                "vpc_id": vpc,
                "state": state,
                "untracking": groups.untracking_id,
                "isolation": groups.isolation_id,
            }
        )
    return rows


def _check_jira(args: argparse.Namespace) -> int:
    if not args.local:
        settings = _settings()
        return _print_jira_checks(args, settings, _session(args).client("secretsmanager"))
    _refuse_profile_with_local(args)
    region = args.region or "us-east-1"
    with _embedded(region) as aws:
        return _print_jira_checks(args, _settings(), aws.client("secretsmanager"))


def _print_jira_checks(args: argparse.Namespace, settings: Any, secrets: Any) -> int:
    from guardduty_responder.jira import JiraTicketing
    from guardduty_responder.ticketing import PRIORITY_NAMES

    from .terminal import table

    ticketing = JiraTicketing(
        secrets,
        secret_arn=settings.jira_secret_arn,
        project_key=settings.jira_project_key,
        issue_type=settings.jira_issue_type,
        timeout_seconds=settings.jira_timeout_seconds,
    )
    checks = ticketing.check_project(PRIORITY_NAMES)
    if args.output == "json":
        _print_json([{"check": check.name, "ok": check.ok, "detail": check.detail} for check in checks])
    else:
        rows = [[check.name, "PASS" if check.ok else "FAIL", check.detail] for check in checks]
        print(table(["check", "result", "detail / remedy"], rows, max_widths=[28, 6, 80]))
    return EXIT_OK if all(check.ok for check in checks) else EXIT_FAILED


def _exempt(args: argparse.Namespace) -> int:
    import time

    from botocore.exceptions import BotoCoreError, ClientError

    from guardduty_responder.clients import AwsClients
    from guardduty_responder.ledger import Ledger, LedgerError

    if not _INSTANCE_ID.fullmatch(args.instance_id):
        raise UsageError(f"{args.instance_id!r} is not an instance id (i- followed by 8 to 17 hex digits)")
    if args.local:
        raise UsageError("--local does not apply to exempt: the embedded AWS lives only as long as one command")
    now = time.time()
    reason, until = _exemption_asked(args, now)
    table_name = _table_name()
    session = _session(args)
    ledger = Ledger(AwsClients(session).dynamodb, table_name, retention_days=1)
    try:
        if args.remove:
            if not ledger.remove_exemption(args.instance_id):
                raise OperationFailed(f"{table_name} holds no exemption for {args.instance_id}: nothing removed")
            result: dict[str, Any] = {"instance_id": args.instance_id, "exempt": False, "removed": True}
        else:
            by = session.client("sts").get_caller_identity()["Arn"]
            exemption = ledger.put_exemption(args.instance_id, reason=reason, until=until, by=by, now=now)
            result = {"instance_id": args.instance_id, "exempt": True, **_exemption_fields(exemption)}
    except (LedgerError, ClientError, BotoCoreError) as error:
        raise OperationFailed(str(error)) from error
    _print_exemption(args, result)
    return EXIT_OK


def _exemption_asked(args: argparse.Namespace, now: float) -> tuple[str, float]:
    """The reason and the end (epoch seconds) of the exemption asked for; checked before anything is written."""
    if args.remove:
        if args.reason is not None or args.until is not None:
            raise UsageError("--remove takes neither --reason nor --until")
        return "", 0.0
    missing = [option for option, value in (("--reason", args.reason), ("--until", args.until)) if value is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise UsageError(f"{' and '.join(missing)} {verb} required to exempt an instance (--remove ends an exemption)")
    reason = " ".join(args.reason.split())
    if not reason:
        raise UsageError("the --reason is blank: say why the instance is exempt")
    text = args.until.strip()
    try:
        end = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"--until {text!r} is not an ISO-8601 time, such as 2026-12-01T18:00:00Z") from None
    if end.tzinfo is None:
        raise UsageError(f"--until {text!r} has no time zone: give it in UTC, such as {text}Z")
    seconds = end.timestamp()
    if seconds <= now:
        raise UsageError(f"--until {text} is in the past: an exemption ends in the future")
    if seconds > now + MAX_EXEMPTION_DAYS * 86400:
        raise UsageError(
            f"--until {text} is more than {MAX_EXEMPTION_DAYS} days ahead: exempt for at most "
            f"{MAX_EXEMPTION_DAYS} days, and renew it if the work takes longer"
        )
    return reason[:1000], seconds


def _exemption_fields(exemption: Any) -> dict[str, str]:
    return {"until": exemption.until, "by": exemption.by, "reason": exemption.reason}


def _print_exemption(args: argparse.Namespace, result: Mapping[str, Any]) -> None:
    from .terminal import key_values

    if args.output == "json":
        _print_json(result)
    elif not result["exempt"]:
        print(
            key_values(
                [("instance", result["instance_id"]), ("exemption", "removed: its findings may isolate it again")]
            )
        )
    else:
        print(
            key_values(
                [
                    ("instance", result["instance_id"]),
                    ("exempt until", result["until"]),
                    ("by", result["by"]),
                    ("reason", result["reason"]),
                    ("meaning", "its findings are recorded, ticketed and announced; nothing is isolated until then"),
                ]
            )
        )


def _isolate(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from guardduty_responder.clients import AwsClients
    from guardduty_responder.isolation import ContainmentError
    from guardduty_responder.ledger import LedgerError
    from guardduty_responder.manual import ManualRequest
    from guardduty_responder.responder import IncompleteResponseError, ManualIsolationRefused, Responder

    if not _INSTANCE_ID.fullmatch(args.instance_id):
        raise UsageError(f"{args.instance_id!r} is not an instance id (i- followed by 8 to 17 hex digits)")
    if args.local:
        raise UsageError("--local does not apply to isolate: the embedded AWS lives only as long as one command")
    reason = " ".join(args.reason.split())
    if not reason:
        raise UsageError("the --reason is blank: say why the instance is isolated")
    if args.account is not None and not re.fullmatch(r"\d{12}", args.account):
        raise UsageError(f"--account {args.account!r} is not a 12-digit account id")
    settings = _settings()
    session = _session(args)
    try:
        caller = session.client("sts").get_caller_identity()
        request = ManualRequest(
            instance_id=args.instance_id,
            account_id=args.account or settings.responder_account_id or caller["Account"],
            region=session.region_name,
            reason=reason[:1000],
            by=(args.by or _user_name())[:256],
            caller_arn=caller["Arn"],
        )
        responder = Responder(settings, AwsClients(session))
        summary = responder.isolate_by_hand(request)
    except ManualIsolationRefused as error:
        raise OperationFailed(str(error)) from error
    except IncompleteResponseError as error:
        raise OperationFailed(f"contained, with steps left for the sweep to finish: {error}") from error
    except (ContainmentError, LedgerError, ClientError, BotoCoreError) as error:
        raise OperationFailed(f"not contained: {error}") from error
    _print_replay(args, summary, responder, extra={})
    return EXIT_OK


def _drill(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from guardduty_responder.clients import AwsClients
    from guardduty_responder.responder import Responder

    from .drill import Drill, DrillRefused, report_text

    if not _INSTANCE_ID.fullmatch(args.instance):
        raise UsageError(f"{args.instance!r} is not an instance id (i- followed by 8 to 17 hex digits)")
    if args.local:
        raise UsageError("--local does not apply to drill: the embedded AWS lives only as long as one command")
    settings, session = _settings(), _session(args)
    try:
        caller = session.client("sts").get_caller_identity()["Arn"]
        report = Drill(Responder(settings, AwsClients(session))).run(
            args.instance, by=(args.by or _user_name())[:200], caller_arn=caller
        )
    except DrillRefused as error:
        raise OperationFailed(str(error)) from error
    except (ClientError, BotoCoreError) as error:
        raise OperationFailed(f"the drill did not start: {error}") from error
    if args.output == "json":
        _print_json(report.to_dict())
    else:
        print(report_text(report))
    return EXIT_OK if report.ok else EXIT_FAILED


def _approve(args: argparse.Namespace) -> int:
    return _decide(args, approve=True)


def _reject(args: argparse.Namespace) -> int:
    return _decide(args, approve=False)


def _decide(args: argparse.Namespace, *, approve: bool) -> int:
    import time

    from botocore.exceptions import BotoCoreError, ClientError

    from guardduty_responder.clients import AwsClients
    from guardduty_responder.ledger import APPROVED, REJECTED, ApprovalRefused, Ledger, LedgerError

    from .terminal import key_values

    if not _FINDING_ID.fullmatch(args.finding_id):
        raise UsageError(f"{args.finding_id!r} is not a finding id (letters, digits, - and _, at most 128)")
    if args.local:
        raise UsageError(
            f"--local does not apply to {args.command}: the embedded AWS lives only as long as one command"
        )
    reason = " ".join((getattr(args, "reason", None) or "").split())
    table_name = _table_name()
    session = _session(args)
    ledger = Ledger(AwsClients(session).dynamodb, table_name, retention_days=1)
    try:
        caller = session.client("sts").get_caller_identity()["Arn"]
        decided = ledger.decide_approval(
            args.finding_id,
            state=APPROVED if approve else REJECTED,
            by=args.by or _user_name(),
            how="command",
            now=time.time(),
            caller_arn=caller,
            reason=reason,
        )
    except ApprovalRefused as error:
        raise OperationFailed(str(error)) from error
    except (LedgerError, ClientError, BotoCoreError) as error:
        raise OperationFailed(str(error)) from error
    result = {
        "finding_id": decided.finding_id,
        "instance_id": decided.instance_id,
        "state": decided.state,
        "by": decided.decided_by,
        "caller_arn": decided.decided_arn,
        "at": decided.decided_at,
        "reason": decided.reason,
        "jira_key": decided.jira_key,
    }
    if args.output == "json":
        _print_json(result)
        return EXIT_OK
    then = (
        "the function isolates it at its next sweep, comments on the issue and sends a message"
        if approve
        else "the function comments on the issue and sends a message at its next sweep; nothing is changed"
    )
    print(
        key_values(
            [
                ("finding", decided.finding_id),
                ("instance", decided.instance_id),
                ("decision", decided.state),
                ("by", f"{decided.decided_by} ({decided.decided_arn})"),
                ("at", decided.decided_at),
                *([("reason", decided.reason)] if decided.reason else []),
                ("Jira", decided.jira_key),
                ("next", then),
            ]
        )
    )
    return EXIT_OK


def _table_name() -> str:
    table_name = os.environ.get("RESPONDER_TABLE", "").strip()
    if not table_name:
        raise UsageError("RESPONDER_TABLE is not set: export the name of the responder's DynamoDB table")
    return table_name


def _status(args: argparse.Namespace) -> int:
    import time

    from botocore.exceptions import BotoCoreError, ClientError

    from guardduty_responder.clients import AwsClients
    from guardduty_responder.ledger import Ledger, LedgerError

    if args.local:
        raise UsageError(
            "--local does not apply to status: the embedded AWS lives only as long as one command. "
            "`replay --local` shows the record of the finding it replays."
        )
    table_name = _table_name()
    if args.instance is not None and not _INSTANCE_ID.fullmatch(args.instance):
        raise UsageError(f"{args.instance!r} is not an instance id")
    ledger = Ledger(AwsClients(_session(args)).dynamodb, table_name, retention_days=1)
    try:
        items = ledger.scan()
    except (LedgerError, ClientError, BotoCoreError) as error:
        raise OperationFailed(f"reading {table_name} failed: {error}") from error
    listing = _ledger_listing(items, now=time.time(), instance_id=args.instance)
    if args.output == "json":
        _print_json(listing)
    else:
        print(_exemptions_table(listing["exemptions"]))
        print(_approvals_table(listing["approvals"], now=time.time()))
        print(_status_tables(listing["instances"], listing["findings"]))
        print(_still_open_lines(listing["instances"]))
    return EXIT_OK


def _still_open_lines(instances: Sequence[Mapping[str, Any]]) -> str:
    """For each isolated instance, the paths that stay open by design: what else to watch."""
    isolated = [item for item in instances if item.get("still_open")]
    lines = [f"Still open on isolated instances ({len(isolated)})"]
    for item in isolated:
        lines.append(f"  {item.get('instance_id')}:")
        lines += [f"    - {path}" for path in item["still_open"]]
    return "\n".join(lines if isolated else [*lines, "  none"]) + "\n"


def _ledger_listing(
    items: Sequence[Mapping[str, Any]], *, now: float, instance_id: str | None
) -> dict[str, list[Mapping[str, Any]]]:
    """The ledger's current exemptions, its incidents (newest first) and its findings (last seen first)."""
    if instance_id is not None:
        items = [item for item in items if item.get("instance_id") == instance_id]
    # Only current exemptions: DynamoDB's TTL removes an expired one only some time after it ends.
    exemptions = sorted(
        (item for item in items if item.get("kind") == "exemption" and float(item.get("until_epoch", 0)) > now),
        key=lambda item: str(item.get("until", "")),
    )
    by_id = {str(item["pk"]): item for item in items}
    # What stays open by design on an isolated instance, as its incident's first finding recorded it.
    instances = sorted(
        (
            {**item, "still_open": list(by_id.get(str(item.get("finding_id")), {}).get("still_open", []))}
            if item.get("state") == "isolated"
            else item
            for item in items
            if str(item["pk"]).startswith("instance#")
        ),
        key=lambda item: str(item.get("isolated_at", "")),
        reverse=True,
    )
    findings = sorted(
        (
            item
            for item in items
            if item.get("kind", "finding") == "finding" and not str(item["pk"]).startswith("instance#")
        ),
        key=lambda item: str(item.get("last_seen", "")),
        reverse=True,
    )
    # Approvals not yet acted on: waiting for a person, or decided and due at the next sweep.
    approvals = sorted(
        (item for item in items if item.get("kind") == "approval" and item.get("unfinished")),
        key=lambda item: float(item.get("requested_epoch", 0)),
    )
    return {"exemptions": exemptions, "approvals": approvals, "instances": instances, "findings": findings}


def _approvals_table(approvals: Sequence[Mapping[str, Any]], *, now: float) -> str:
    from .terminal import table

    def age(item: Mapping[str, Any]) -> str:
        minutes = int(max(now - float(item.get("requested_epoch", now)), 0) // 60)
        return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"

    def timeout(item: Mapping[str, Any]) -> str:
        if not float(item.get("timeout_epoch", 0)):
            return "none: waits for a person"
        left = int((float(item["timeout_epoch"]) - now) // 60)
        when = f"in {left} min" if left >= 0 else "due at the next sweep"
        return f"{item.get('on_timeout', 'report')} {when}"

    rows = [
        [
            [str(item.get("finding_id", "")), str(item.get("finding_type", ""))],
            item.get("instance_id"),
            str(item.get("state", "")) + (f" by {item['decided_by']}" if item.get("decided_by") else ""),
            age(item),
            timeout(item),
            item.get("rule"),
            item.get("jira_key"),
        ]
        for item in approvals
    ]
    listed = (
        table(
            ["finding", "instance", "state", "waiting", "timeout", "rule", "Jira"],
            rows,
            max_widths=[38, 19, 30, 12, 28, 20, 10],
        )
        if rows
        else "  none"
    )
    return f"Awaiting approval ({len(approvals)})\n{listed}\n"


def _exemptions_table(exemptions: Sequence[Mapping[str, Any]]) -> str:
    from .terminal import table

    rows = [[item.get("instance_id"), item.get("until"), item.get("by"), item.get("reason")] for item in exemptions]
    listed = (
        table(["instance", "exempt until", "by", "reason"], rows, max_widths=[19, 20, 40, 60]) if rows else "  none"
    )
    return f"Exemptions ({len(exemptions)})\n{listed}\n"


def _status_tables(instances: Sequence[Mapping[str, Any]], findings: Sequence[Mapping[str, Any]]) -> str:
    from .terminal import table

    instance_rows = [
        [
            item.get("instance_id"),
            [str(item.get("state", "")), *([f"by {item['released_by']}"] if item.get("released_by") else [])],
            _groups_lines(item.get("original_groups", {})),
            item.get("jira_key"),
            [
                f"isolated {item.get('isolated_at', '')}",
                *([f"released {item['released_at']}"] if item.get("released_at") else []),
            ],
            [str(len(item.get("findings", ()))), *sorted(item.get("findings", ()))],
        ]
        for item in instances
    ]
    finding_rows = [
        [
            [str(item.get("finding_type", "")), str(item["pk"])],
            item.get("instance_id"),
            f"{float(item.get('severity', 0)):g} {item.get('severity_label', '')}",
            [
                str(item.get("decision", "")),
                str(item.get("status", "")) + ("" if item.get("completed") else ", unfinished"),
            ],
            str(item.get("service_count", "")),
            [
                f"{name}: {state.get('status')}" + (f" ({state['error']})" if state.get("error") else "")
                for name, state in sorted(item.get("steps", {}).items(), key=lambda entry: _step_rank(entry[0]))
            ],
            item.get("jira_key"),
            item.get("last_seen"),
        ]
        for item in findings
    ]
    parts = [f"Instances ({len(instances)})"]
    parts.append(
        table(
            ["instance", "state", "groups to restore", "Jira", "when", "findings"],
            instance_rows,
            max_widths=[19, 24, 40, 10, 30, 34],
        )
        if instance_rows
        else "  none"
    )
    parts.append(f"\nFindings ({len(findings)})")
    parts.append(
        table(
            ["finding", "instance", "severity", "decision, status", "count", "steps", "Jira", "last seen"],
            finding_rows,
            max_widths=[38, 19, 11, 22, 5, 40, 10, 20],
        )
        if finding_rows
        else "  none"
    )
    return "\n".join(parts)


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.profile or args.region:
        raise UsageError("the demo always runs on the embedded AWS: --profile and --region do not apply")
    with _embedded_available():
        report = run_demo(sys.stdout, show=args.output == "table", log_path=args.log_file)
    if args.output == "json":
        _print_json(report.to_dict())
    return EXIT_OK if report.ok else EXIT_FAILED


# -- shared pieces --------------------------------------------------------------------------------------------


def _read_event(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else pathlib.Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise UsageError(f"{path} is not UTF-8 text") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(
            f"{path} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from error


def _session(args: argparse.Namespace) -> Any:
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
    except ProfileNotFound as error:
        raise UsageError(f"{error} (see `aws configure list-profiles`)") from error
    if not session.region_name:
        raise UsageError("no AWS region: pass --region, or set AWS_REGION or a region in the profile")
    if session.get_credentials() is None:
        raise UsageError("no AWS credentials: pass --profile, or set them as the AWS CLI expects (`aws configure`)")
    return session


def _settings() -> Any:
    from guardduty_responder.config import ConfigError, Settings

    try:
        return Settings.from_environ(os.environ)
    except ConfigError as error:
        raise UsageError(
            f"{error} (the same variables as the Lambda function; see the README's Configuration)"
        ) from error


def _refuse_profile_with_local(args: argparse.Namespace) -> None:
    if args.profile:
        raise UsageError("--profile and --local exclude each other: --local never uses an AWS account")


@contextmanager
def _embedded(region: str) -> Iterator[Any]:
    from .embedded import EmbeddedAws

    with _embedded_available(), EmbeddedAws(region=region) as aws:
        yield aws


@contextmanager
def _embedded_available() -> Iterator[None]:
    from .embedded import EmbeddedAwsUnavailable

    try:
        yield
    except EmbeddedAwsUnavailable as error:
        raise OperationFailed(str(error)) from error


def _live_groups(instance: Mapping[str, Any]) -> dict[str, list[str]]:
    return {
        eni["NetworkInterfaceId"]: sorted(group["GroupId"] for group in eni["Groups"])
        for eni in sorted(instance["NetworkInterfaces"], key=lambda eni: eni["Attachment"]["DeviceIndex"])
    }


def _groups_lines(groups: Mapping[str, Sequence[str]]) -> list[str]:
    return [f"{eni}: {', '.join(ids)}" for eni, ids in groups.items()]


def _step_rank(name: str) -> int:
    from guardduty_responder.steps import step_rank

    return step_rank(name)


def _user_name() -> str:
    try:
        return f"{getpass.getuser()} (command line)"
    except (KeyError, OSError):
        return "command line"


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=_json_value, sort_keys=True))


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@contextmanager
def _package_logs(debug: bool) -> Iterator[None]:
    """The responder's JSON logs on standard error (warnings, or everything with --debug), for this command only."""
    from guardduty_responder.logs import JsonFormatter

    package_logger = logging.getLogger("guardduty_responder")
    saved = (list(package_logger.handlers), package_logger.level, package_logger.propagate)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    package_logger.handlers = [handler]
    package_logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    package_logger.propagate = False
    try:
        yield
    finally:
        package_logger.handlers, package_logger.level, package_logger.propagate = saved[0], saved[1], saved[2]


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of each record (it may be replaced, e.g. under test)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


# -- entry point --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse exits 0 after --help and 2 on a usage error; return the code instead of exiting.
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else EXIT_USAGE
    if args.command is None:
        parser.print_usage(sys.stderr)
        print(
            f"{PROG}: error: a command is required: replay, release, sweep, prepare, check-jira, doctor, drill, "
            "isolate, exempt, approve, reject, status or demo (see --help)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    label = f"{PROG} {args.command}"
    with _package_logs(args.debug):
        try:
            return args.run(args)
        except UsageError as error:
            print(f"{label}: error: {error}", file=sys.stderr)
            return EXIT_USAGE
        except OperationFailed as error:
            print(f"{label}: failed: {error}", file=sys.stderr)
            return EXIT_FAILED
        except KeyboardInterrupt:
            print(f"{label}: interrupted", file=sys.stderr)
            return 130
        except Exception as error:
            # The one broad catch: a clear line instead of a traceback (kept for --debug), and a failing exit.
            if args.debug:
                traceback.print_exc()
            print(f"{label}: unexpected error: {type(error).__name__}: {error}", file=sys.stderr)
            return EXIT_FAILED
