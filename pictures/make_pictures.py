"""Draw the README's pictures: the deployed system, the order of one containment, and the
deployment across an AWS Organization.

    make pictures        (or: python pictures/make_pictures.py, with `diagrams` installed)

architecture.png and organisation.png use the `diagrams` package (AWS icons) on Graphviz;
containment-sequence.png is laid out here, point by point, and rendered by Graphviz's neato with
fixed positions, because Graphviz has no sequence-diagram layout of its own. All need Graphviz's
`dot` on PATH.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
FONT = "DejaVu Sans"
# What the `diagrams` pictures share: fonts, spacing and curved edges (curves keep each label beside
# its own edge; orthogonal routing lets them drift).
GRAPH = {
    "fontname": FONT,
    "fontsize": "22",
    "pad": "0.4",
    "nodesep": "0.6",
    "ranksep": "1.3",
    "labelloc": "t",
    "splines": "spline",
}
NODE = {"fontname": FONT, "fontsize": "13"}
EDGE = {"fontname": FONT, "fontsize": "12"}


def architecture(path: pathlib.Path) -> None:
    from diagrams import Cluster, Diagram, Edge
    from diagrams.aws.compute import EC2Instances, Lambda
    from diagrams.aws.database import Dynamodb

    # The icon sets have no Jira: a generic building stands for the Jira site.
    from diagrams.aws.general import GenericOfficeBuilding
    from diagrams.aws.integration import Eventbridge, SimpleNotificationServiceSns, SimpleQueueServiceSqs
    from diagrams.aws.management import CloudwatchAlarm
    from diagrams.aws.security import Guardduty, SecretsManager
    from diagrams.aws.storage import ElasticBlockStoreEBSSnapshot
    from diagrams.onprem.client import Users

    with Diagram(
        "GuardDuty EC2 responder: what `terraform apply` deploys",
        filename=str(path.with_suffix("")),
        outformat="png",
        show=False,
        direction="LR",
        graph_attr=GRAPH,
        node_attr=NODE,
        edge_attr=EDGE,
    ):
        guardduty = Guardduty("Amazon GuardDuty\nEC2 finding")
        with Cluster("the responder (one per region)", graph_attr={"fontname": FONT, "fontsize": "15"}):
            rule = Eventbridge("EventBridge rule\nEC2 instance, severity ≥ min")
            function = Lambda("Lambda function\nguardduty_responder.handler")
            ledger = Dynamodb("DynamoDB ledger\none item per finding\nand per incident")
            topic = SimpleNotificationServiceSns("SNS topic")
            secret = SecretsManager("Secrets Manager\nJira credentials")
            dead_letters = SimpleQueueServiceSqs("dead-letter queue\nevent + reason")
            alarm = CloudwatchAlarm("alarm on the\ndead-letter queue")
        with Cluster("the account's estate", graph_attr={"fontname": FONT, "fontsize": "15"}):
            instances = EC2Instances("EC2 instance\nevery ENI: untracking,\nthen isolation group")
            snapshots = ElasticBlockStoreEBSSnapshot("EBS snapshots\n(crash-consistent)")
        jira = GenericOfficeBuilding("Jira\none issue per incident")
        people = Users("on-call people")

        guardduty >> Edge(label="finding") >> rule >> Edge(label="invoke (async)") >> function
        function >> Edge(label="1 claim, record steps", color="#555555") >> ledger
        function >> Edge(label="2 contain, 3 preserve", color="firebrick", style="bold") >> instances
        instances >> Edge(style="dashed", label="CreateSnapshots") >> snapshots
        function >> Edge(label="read at run time", style="dashed") >> secret
        function >> Edge(label="4 issue / comment") >> jira
        function >> Edge(label="5 message") >> topic >> Edge(label="email, chat, pager") >> people
        function >> Edge(label="after the retries", color="darkorange", style="dashed") >> dead_letters >> alarm


def organisation(path: pathlib.Path) -> None:
    from diagrams import Cluster, Diagram, Edge
    from diagrams.aws.compute import EC2Instances, Lambda
    from diagrams.aws.database import Dynamodb

    # The icon sets have no Jira: a generic building stands for the Jira site, as in architecture().
    from diagrams.aws.general import GenericOfficeBuilding
    from diagrams.aws.integration import Eventbridge, SimpleNotificationServiceSns
    from diagrams.aws.management import Organizations
    from diagrams.aws.security import Guardduty, SecretsManager

    graph = {
        **GRAPH,
        # Closer than architecture(): this picture has seven columns.
        "ranksep": "1.0",
        # Rank the nodes across the clusters: each member account spans the picture, from its
        # detector on the left to its role and instances on the right, and nothing flows back.
        "newrank": "true",
    }
    cluster = {"fontname": FONT, "fontsize": "15"}
    with Diagram(
        "Across an AWS Organization: one administrator account, member roles, every region",
        filename=str(path.with_suffix("")),
        outformat="png",
        show=False,
        direction="LR",
        graph_attr=graph,
        node_attr=NODE,
        edge_attr=EDGE,
    ):
        # Graphviz draws member account A below the administrator account and B above it.
        with Cluster("AWS Organization", graph_attr=cluster):
            members = [member_account("member account A", cluster)]
            organization = Organizations("AWS Organizations\ndelegates GuardDuty\nadministration")
            # The nesting of the with statements is the nesting of the boxes in the picture.
            with Cluster("security account: GuardDuty delegated administrator", graph_attr=cluster):  # noqa: SIM117
                with Cluster(
                    "each region: one deployment of the root module\\l(eu-west-1, us-east-1, ...)\\l",
                    # The margin keeps the last column's labels, wider than their icons, inside the box.
                    graph_attr={**cluster, "style": "dashed,rounded", "margin": "24"},
                ):
                    administrator = Guardduty("GuardDuty\ndelegated\nadministrator:\nevery member's\nfindings")
                    rule = Eventbridge("EventBridge rule")
                    secret = SecretsManager("Secrets Manager\nJira credentials")
                    function = Lambda("Lambda function\n(the responder's role)")
                    own = EC2Instances("the account's\nown instances")
                    topic = SimpleNotificationServiceSns("SNS topic")
                    ledger = Dynamodb("DynamoDB ledger\nclaims, steps,\ncircuit-breaker\ncounts")
            members.append(member_account("member account B, C, ...", cluster))
        jira = GenericOfficeBuilding("Jira site")

        # Two columns long, so that the organisation has a column of its own, left of the detectors.
        organization >> Edge(label="delegated\nadministrator", style="dashed", minlen="2") >> administrator
        administrator >> Edge(label="finding") >> rule >> Edge(label="invoke") >> function
        # Drawn from the secret, so that it sits beside the rule rather than in the crowded last column.
        secret << Edge(label="read at\nrun time", style="dashed") << function
        function >> Edge(label="acted on\ndirectly", color="firebrick", style="bold") >> own
        function >> Edge(label="message") >> topic
        function >> Edge(label="claim,\ncircuit breaker", color="#555555") >> ledger
        # Drawn from Jira, so that it takes the secret's column: its edge then crosses a member account
        # where that account is empty.
        jira << Edge(label="issue /\ncomment") << function
        # Each edge into the administrator's GuardDuty meets the icon at the corner nearest its member
        # account (A below, B above), clear of the label.
        for (detector, role, instances), port in zip(members, ("sw", "nw"), strict=True):
            organization >> Edge(label="member", style="dashed", headport="w") >> detector
            detector >> Edge(label="findings", headport=port) >> administrator
            function >> Edge(label="sts:AssumeRole\n+ external id", headport="w") >> role
            role >> Edge(label="isolate, snapshot", color="firebrick", style="bold") >> instances


def member_account(name: str, cluster: dict[str, str]) -> tuple:
    """One member account's cluster: its GuardDuty detector, the role the responder assumes, its instances."""
    from diagrams import Cluster
    from diagrams.aws.compute import EC2Instances
    from diagrams.aws.security import Guardduty, IAMRole

    with Cluster(name, graph_attr=cluster):
        detector = Guardduty("GuardDuty detector\n(member)")
        role = IAMRole("guardduty-responder-member\n(modules/member-role):\ntrusts only the responder's role")
        instances = EC2Instances("EC2 instances")
    return detector, role, instances


# -- the sequence -------------------------------------------------------------------------------------

PARTICIPANTS = [
    ("eventbridge", "EventBridge"),
    ("function", "Lambda function"),
    ("ledger", "DynamoDB ledger"),
    ("ec2", "EC2"),
    ("jira", "Jira"),
    ("sns", "SNS"),
]
# (from, to, text, kind): kind is "call", "reply", "note" or "phase"
MESSAGES = [
    ("eventbridge", "function", "GuardDuty finding event", "call"),
    ("function", "function", "parse, decide (pure code)", "self"),
    ("function", "ledger", "claim: PutItem if attribute_not_exists(pk)", "call"),
    ("ledger", "function", "new finding (a repeat stops here: count noted)", "reply"),
    ("function", "ec2", "DescribeInstances: ENIs, groups, live tags, volumes", "call"),
    ("function", "ec2", "find or create the VPC's untracking and isolation groups", "call"),
    ("function", "ledger", "original groups of every ENI (before any move)", "call"),
    ("containment", "", "containment: every ENI in parallel", "phase"),
    ("function", "ec2", "1. every ENI to the untracking group (all traffic): connections untracked", "call"),
    ("function", "ec2", "2. every ENI to the isolation group (no rules): connections cut", "call"),
    ("end", "", "", "phase"),
    ("function", "ledger", "claim the incident (instance#id)", "call"),
    ("function", "ec2", "CreateSnapshots (all volumes), protect, tag, ASG standby, leave target groups", "call"),
    ("function", "ledger", "record each step: done / failed, snapshot ids", "call"),
    ("function", "jira", "create issue (label carries the finding id), or comment", "call"),
    ("function", "sns", "publish: subject, phone-sized body, filter attributes", "call"),
    ("function", "ledger", "ticket and message recorded, lease released", "call"),
]


def containment_sequence(path: pathlib.Path) -> None:
    column = 230
    row = 46
    left = 100
    top = 40
    x = {name: left + index * column for index, (name, _label) in enumerate(PARTICIPANTS)}
    lines = [
        "digraph sequence {",
        f'  graph [bgcolor=white, pad=0.3, fontname="{FONT}", dpi=110];',
        f'  node [fontname="{FONT}", fontsize=13];',
        f'  edge [fontname="{FONT}", fontsize=12];',
    ]
    bottom = -(top + row * (len(MESSAGES) + 1))
    for name, label in PARTICIPANTS:
        lines.append(
            f'  head_{name} [label="{label}", shape=box, style="rounded,filled", fillcolor="#e8eef7", '
            f'color="#3b5b8c", width=1.9, height=0.5, pos="{x[name]},0!"];'
        )
        lines.append(f'  foot_{name} [label="", shape=point, width=0.01, pos="{x[name]},{bottom}!"];')
        lines.append(f'  head_{name} -> foot_{name} [arrowhead=none, style=dashed, color="#9aa5b1"];')

    phase_start = 0.0
    for index, (source, target, text, kind) in enumerate(MESSAGES):
        y = -(top + row * (index + 1))
        label = text.replace('"', '\\"')
        if kind == "phase":
            if source == "containment":
                phase_start = y + row * 0.6
                lines.append(
                    f'  phase_label [label="{label}", shape=plaintext, fontcolor=firebrick, fontsize=13, '
                    f'pos="{x["ec2"] + 150},{y + 2}!"];'
                )
            else:
                height = phase_start - (y + row * 0.45)
                centre_y = phase_start - height / 2
                width = x["ec2"] - x["function"] + 380
                lines.append(
                    f'  phase_box [label="", shape=box, style="dashed,rounded", color=firebrick, penwidth=1.5, '
                    f"width={width / 72:.2f}, height={height / 72:.2f}, "
                    f'pos="{(x["function"] + x["ec2"]) / 2 + 130},{centre_y}!"];'
                )
            continue
        if kind == "self":
            lines.append(
                f'  m{index} [label="{label}", shape=note, style=filled, fillcolor="#fff8dc", color="#c8b560", '
                f'fontsize=12, pos="{x[source] + 20 + 9 * len(text) / 2},{y}!"];'
            )
            continue
        style = "dashed" if kind == "reply" else "solid"
        colour = "firebrick" if "group (" in text else "#333333"
        lines.append(f'  a{index} [label="", shape=point, width=0.01, pos="{x[source]},{y}!"];')
        lines.append(f'  b{index} [label="", shape=point, width=0.01, pos="{x[target]},{y}!"];')
        lines.append(f'  a{index} -> b{index} [style={style}, color="{colour}", penwidth=1.4, arrowsize=0.8];')
        text_x = x[source] + 12 if x[target] > x[source] else x[target] + 12
        lines.append(
            f'  t{index} [label="{label}", shape=plaintext, fontsize=12, fontcolor="{colour}", '
            f'pos="{text_x + 6.2 * len(text) / 2},{y + 11}!"];'
        )
    lines.append("}")
    source_path = path.with_suffix(".dot")
    source_path.write_text("\n".join(lines) + "\n")
    try:
        subprocess.run(["dot", "-Kneato", "-n2", "-Tpng", str(source_path), "-o", str(path)], check=True)
    finally:
        source_path.unlink()


def main() -> int:
    if shutil.which("dot") is None:
        print(
            "Graphviz's `dot` is not on PATH: install graphviz (apt-get install graphviz, brew install graphviz)",
            file=sys.stderr,
        )
        return 1
    try:
        import diagrams  # noqa: F401
    except ImportError:
        print("the `diagrams` package is missing: `make pictures` installs it", file=sys.stderr)
        return 1
    architecture(HERE / "architecture.png")
    containment_sequence(HERE / "containment-sequence.png")
    organisation(HERE / "organisation.png")
    for name in ("architecture.png", "containment-sequence.png", "organisation.png"):
        print(f"wrote pictures/{name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
