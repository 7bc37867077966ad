"""What each GuardDuty finding type about an EC2 instance says the instance did. Pure code.

Every type the GuardDuty User Guide documents on its "EC2 finding types", "Runtime Monitoring
finding types" and "Malware Protection for EC2 finding types" pages, the two instance-credential
types of the IAM page, and the retired EC2 types old findings may still carry. For each, what the
documented activity means for the instance:

- IMPLICATED: the instance itself did it (queried a domain, connected out, ran a process, holds a
  malicious file, its credentials were used elsewhere);
- ATTACKED: something was done to it (a remote host probed it, connected in);
- BY_DIRECTION: GuardDuty uses the type both ways (a brute force by the instance or against it):
  the finding's connection direction tells which.

`service.resourceRole` is not used to decide: GuardDuty sets TARGET on types where the instance
made the DNS request or the outbound connection (a mining pool, a C&C domain, a Tor guard), and
leaves it unset on Runtime Monitoring and Malware Protection findings. It is recorded and shown.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .finding import Finding
from .finding_details import Activity


class Family(enum.StrEnum):
    EC2 = "EC2 (VPC flow logs and DNS logs)"
    RUNTIME = "Runtime Monitoring"
    MALWARE = "Malware Protection for EC2"
    CREDENTIALS = "IAM, instance credentials"
    RETIRED = "retired EC2 type"


class Meaning(enum.StrEnum):
    IMPLICATED = "implicated"
    ATTACKED = "attacked"
    BY_DIRECTION = "by direction"


@dataclass(frozen=True)
class FindingType:
    family: Family
    meaning: Meaning


def _types(family: Family, meaning: Meaning, *names: str) -> dict[str, FindingType]:
    return {name: FindingType(family, meaning) for name in names}


FINDING_TYPES: dict[str, FindingType] = {
    **_types(
        Family.EC2,
        Meaning.IMPLICATED,
        "Backdoor:EC2/C&CActivity.B",
        "Backdoor:EC2/C&CActivity.B!DNS",
        "Backdoor:EC2/DenialOfService.Dns",
        "Backdoor:EC2/DenialOfService.Tcp",
        "Backdoor:EC2/DenialOfService.Udp",
        "Backdoor:EC2/DenialOfService.UdpOnTcpPorts",
        "Backdoor:EC2/DenialOfService.UnusualProtocol",
        "Backdoor:EC2/Spambot",
        "Behavior:EC2/NetworkPortUnusual",
        "Behavior:EC2/TrafficVolumeUnusual",
        "CryptoCurrency:EC2/BitcoinTool.B",
        "CryptoCurrency:EC2/BitcoinTool.B!DNS",
        "DefenseEvasion:EC2/UnusualDNSResolver",
        "DefenseEvasion:EC2/UnusualDoHActivity",
        "DefenseEvasion:EC2/UnusualDoTActivity",
        "Impact:EC2/AbusedDomainRequest.Reputation",
        "Impact:EC2/BitcoinDomainRequest.Reputation",
        "Impact:EC2/MaliciousDomainRequest.Custom",
        "Impact:EC2/MaliciousDomainRequest.Reputation",
        "Impact:EC2/PortSweep",
        "Impact:EC2/SuspiciousDomainRequest.Reputation",
        "Recon:EC2/Portscan",
        "Trojan:EC2/BlackholeTraffic",
        "Trojan:EC2/BlackholeTraffic!DNS",
        "Trojan:EC2/DGADomainRequest.B",
        "Trojan:EC2/DGADomainRequest.C!DNS",
        "Trojan:EC2/DNSDataExfiltration",
        "Trojan:EC2/DriveBySourceTraffic!DNS",
        "Trojan:EC2/DropPoint",
        "Trojan:EC2/DropPoint!DNS",
        "Trojan:EC2/PhishingDomainRequest!DNS",
        # The instance made the lookup; GuardDuty words it as the instance being targeted by rebinding.
        "UnauthorizedAccess:EC2/MetadataDNSRebind",
        "UnauthorizedAccess:EC2/TorClient",
        "UnauthorizedAccess:EC2/TorRelay",
    ),
    **_types(
        Family.EC2,
        Meaning.ATTACKED,
        "Recon:EC2/PortProbeEMRUnprotectedPort",
        "Recon:EC2/PortProbeUnprotectedPort",
    ),
    **_types(
        Family.EC2,
        Meaning.BY_DIRECTION,
        "Impact:EC2/WinRMBruteForce",
        "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom",
        "UnauthorizedAccess:EC2/RDPBruteForce",
        "UnauthorizedAccess:EC2/SSHBruteForce",
    ),
    **_types(
        Family.RUNTIME,
        Meaning.IMPLICATED,
        "Backdoor:Runtime/C&CActivity.B",
        "Backdoor:Runtime/C&CActivity.B!DNS",
        "CryptoCurrency:Runtime/BitcoinTool.B",
        "CryptoCurrency:Runtime/BitcoinTool.B!DNS",
        "DefenseEvasion:Runtime/FilelessExecution",
        "DefenseEvasion:Runtime/KernelModuleLoaded",
        "DefenseEvasion:Runtime/ProcessInjection.Proc",
        "DefenseEvasion:Runtime/ProcessInjection.Ptrace",
        "DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite",
        "DefenseEvasion:Runtime/PtraceAntiDebugging",
        "DefenseEvasion:Runtime/SuspiciousCommand",
        "Discovery:Runtime/SuspiciousCommand",
        "Execution:Runtime/MaliciousFileExecuted",
        "Execution:Runtime/NewBinaryExecuted",
        "Execution:Runtime/NewLibraryLoaded",
        "Execution:Runtime/ReverseShell",
        "Execution:Runtime/SuspiciousCommand",
        "Execution:Runtime/SuspiciousShellCreated",
        "Execution:Runtime/SuspiciousTool",
        "Impact:Runtime/AbusedDomainRequest.Reputation",
        "Impact:Runtime/BitcoinDomainRequest.Reputation",
        "Impact:Runtime/CryptoMinerExecuted",
        "Impact:Runtime/MaliciousDomainRequest.Reputation",
        "Impact:Runtime/SuspiciousDomainRequest.Reputation",
        "Persistence:Runtime/SuspiciousCommand",
        "PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified",
        "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory",
        "PrivilegeEscalation:Runtime/DockerSocketAccessed",
        "PrivilegeEscalation:Runtime/ElevationToRoot",
        "PrivilegeEscalation:Runtime/RuncContainerEscape",
        "PrivilegeEscalation:Runtime/SuspiciousCommand",
        "PrivilegeEscalation:Runtime/UserfaultfdUsage",
        "Trojan:Runtime/BlackholeTraffic",
        "Trojan:Runtime/BlackholeTraffic!DNS",
        "Trojan:Runtime/DGADomainRequest.C!DNS",
        "Trojan:Runtime/DriveBySourceTraffic!DNS",
        "Trojan:Runtime/DropPoint",
        "Trojan:Runtime/DropPoint!DNS",
        "Trojan:Runtime/PhishingDomainRequest!DNS",
        "UnauthorizedAccess:Runtime/MetadataDNSRebind",
        "UnauthorizedAccess:Runtime/TorClient",
        "UnauthorizedAccess:Runtime/TorRelay",
    ),
    **_types(
        Family.MALWARE,
        Meaning.IMPLICATED,
        "Execution:EC2/MaliciousFile",
        "Execution:EC2/SuspiciousFile",
        "Execution:ECS/MaliciousFile",
        "Execution:ECS/SuspiciousFile",
        "Execution:Kubernetes/MaliciousFile",
        "Execution:Kubernetes/SuspiciousFile",
        "Execution:Container/MaliciousFile",
        "Execution:Container/SuspiciousFile",
    ),
    **_types(
        Family.CREDENTIALS,
        Meaning.IMPLICATED,
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS",
    ),
    **_types(Family.RETIRED, Meaning.IMPLICATED, "Backdoor:EC2/XORDDOS", "CryptoCurrency:EC2/BitcoinTool.A"),
    **_types(Family.RETIRED, Meaning.ATTACKED, "UnauthorizedAccess:EC2/TorIPCaller"),
}


def documented(finding_type: str) -> FindingType | None:
    """The documented meaning of a type, if GuardDuty's user guide lists it."""
    return FINDING_TYPES.get(finding_type)


class Involvement(enum.StrEnum):
    """The instance's part in a finding, judged from what GuardDuty saw it do."""

    IMPLICATED = "implicated"
    ATTACKED = "attacked"


@dataclass(frozen=True)
class Judgement:
    involvement: Involvement
    # What the instance did, or what was done to it, in a few words for the reason.
    what: str


def judge(finding: Finding) -> Judgement:
    """Implicated or attacked, from the action GuardDuty reports and the type's documentation.

    The instance is on the receiving end only when traffic came towards it (a port probe, an inbound
    connection) and GuardDuty does not document the type as the instance's own doing. A DNS request
    it made, a connection it opened, a process it ran, a file it holds and credentials of its role
    used elsewhere implicate it; so does any traffic of a type GuardDuty documents as its own doing
    (a Tor relay or a node also serves connections coming in).
    """
    if finding.group_instances:
        count = len(finding.group_instances)
        return Judgement(
            Involvement.IMPLICATED, f"GuardDuty correlated a sequence of suspicious actions across {count} instance(s)"
        )
    activity = finding.activity
    known = documented(finding.finding_type)
    own_doing = known is not None and known.meaning is Meaning.IMPLICATED
    if finding.process is not None:
        return Judgement(Involvement.IMPLICATED, f"a process ran on it ({finding.process.name or 'unnamed'})")
    if activity.action_type == "NETWORK_CONNECTION":
        return _connection(activity, own_doing)
    if activity.action_type == "PORT_PROBE" and not own_doing:
        return Judgement(Involvement.ATTACKED, f"{activity.remote or 'a remote host'} probed its open port(s)")
    if activity.action_type == "DNS_REQUEST":
        return Judgement(Involvement.IMPLICATED, f"it queried {activity.remote or 'a domain name'}")
    if activity.action_type == "AWS_API_CALL" or finding.credentials is not None:
        return Judgement(
            Involvement.IMPLICATED, f"its role's credentials were used from {activity.remote or 'elsewhere'}"
        )
    if finding.detected_files:
        return Judgement(Involvement.IMPLICATED, f"its volumes hold {len(finding.detected_files)} malicious file(s)")
    if known is not None and not own_doing:
        return Judgement(Involvement.ATTACKED, "GuardDuty reports activity towards it")
    return Judgement(Involvement.IMPLICATED, "GuardDuty reports activity of its own")


def _connection(activity: Activity, own_doing: bool) -> Judgement:
    remote = activity.remote or "a remote host"
    if activity.direction == "OUTBOUND":
        return Judgement(Involvement.IMPLICATED, f"it connected out to {remote}")
    if own_doing:
        seen = (
            f"{remote} connected in to it" if activity.direction == "INBOUND" else f"it exchanged traffic with {remote}"
        )
        return Judgement(Involvement.IMPLICATED, f"{seen}, which GuardDuty documents as the instance's own doing")
    if activity.direction == "INBOUND":
        return Judgement(Involvement.ATTACKED, f"{remote} connected in to it")
    return Judgement(Involvement.ATTACKED, f"it exchanged traffic with {remote}, direction unknown: a person decides")
