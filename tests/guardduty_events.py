"""GuardDuty finding events as GuardDuty sends them, for any documented EC2 finding type.

Built from GuardDuty's finding format (the API model's shapes: `action` by action type,
`runtimeDetails.process`, `ebsVolumeScanDetails`, `accessKeyDetails`) and from what real events
show (fixtures/events/README.md names the public sources they were read from):

- GuardDuty labels most types TARGET, including those where the instance itself queried the
  domain or opened the connection (C&C, mining pools, Tor, drop points, phishing domains,
  MetadataDNSRebind); real events carry ACTOR only for the types in OBSERVED_ACTOR;
- Runtime Monitoring process detections carry no `action`; Malware Protection findings carry
  neither `action` nor `resourceRole`;
- samples say so in `service.additionalInfo`, flat (`sample: true`) or inside its `value` JSON string.

Identifiers are this project's own; addresses come from the documentation ranges and domains end
in `.example`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from guardduty_responder.finding_types import FINDING_TYPES, Family, Meaning

ACCOUNT = "123456789012"
REGION = "us-east-1"
DETECTOR = "5cc4f1a9e2b84d7f9a3e6b1d8c2f0a47"
INSTANCE = "i-0a7c3e5f9b1d24680"
# Types real events carry ACTOR on; every other one comes TARGET (or without a role).
OBSERVED_ACTOR = {
    "Backdoor:EC2/DenialOfService.Dns",
    "Backdoor:EC2/DenialOfService.Tcp",
    "Backdoor:EC2/DenialOfService.Udp",
    "Backdoor:EC2/DenialOfService.UdpOnTcpPorts",
    "Backdoor:EC2/DenialOfService.UnusualProtocol",
    "Behavior:EC2/NetworkPortUnusual",
    "DefenseEvasion:EC2/UnusualDoTActivity",
    "Impact:EC2/PortSweep",
    "Impact:EC2/WinRMBruteForce",
    "Recon:EC2/Portscan",
    "Trojan:EC2/DGADomainRequest.B",
    "Trojan:EC2/DNSDataExfiltration",
}
# Runtime Monitoring types that report the traffic as well as the process.
_RUNTIME_CONNECTIONS = ("C&CActivity.B", "BitcoinTool.B", "BlackholeTraffic", "DropPoint", "TorClient", "TorRelay")
_DNS_TYPES = ("!DNS", "DomainRequest", "DNSDataExfiltration", "MetadataDNSRebind", "DGADomainRequest.B")
_CONTAINER_RESOURCES = {"ECS": "ECSCluster", "Kubernetes": "EKSCluster", "Container": "Container"}


def documented_event(
    finding_type: str,
    *,
    severity: float = 8.0,
    role: str | None = "observed",
    direction: str = "INBOUND",
    instance_id: str = INSTANCE,
) -> dict[str, Any]:
    """An event of `finding_type` shaped as GuardDuty sends that type.

    `role`: "observed" for the role real events carry, or ACTOR, TARGET, None. `direction`: the
    connection's, for the types GuardDuty uses both ways (brute force by or against the instance).
    """
    known = FINDING_TYPES[finding_type]
    if role == "observed":
        role = None if known.family is Family.MALWARE else "ACTOR" if finding_type in OBSERVED_ACTOR else "TARGET"
    service: dict[str, Any] = {"count": 1, "additionalInfo": {"value": "{}", "type": "default"}}
    if role is not None:
        service["resourceRole"] = role
    action = _action_of(finding_type, known.family, known.meaning, direction)
    if action is not None:
        service["action"] = action
    if known.family is Family.RUNTIME:
        service["runtimeDetails"] = {"process": process()}
    if known.family is Family.MALWARE:
        service["ebsVolumeScanDetails"] = scan_detections()
    resource_type = _resource_type(finding_type, known.family)
    return envelope(finding_type, severity, resource(resource_type, instance_id), service)


def _action_of(finding_type: str, family: Family, meaning: Meaning, direction: str) -> dict[str, Any] | None:
    if family is Family.MALWARE:
        return None
    if family is Family.CREDENTIALS:
        return api_call("203.0.113.77")
    if any(marker in finding_type for marker in _DNS_TYPES):
        return dns_request("pool.mining.example")
    if family is Family.RUNTIME:
        return connection("OUTBOUND") if any(name in finding_type for name in _RUNTIME_CONNECTIONS) else None
    if "PortProbe" in finding_type:
        return port_probe()
    if meaning is Meaning.BY_DIRECTION:
        return connection(direction)
    return connection("INBOUND" if meaning is Meaning.ATTACKED else "OUTBOUND")


def _resource_type(finding_type: str, family: Family) -> str:
    if family is Family.CREDENTIALS:
        return "AccessKey"
    platform = finding_type.split(":", 1)[1].split("/", 1)[0]
    return _CONTAINER_RESOURCES.get(platform, "Instance") if family is Family.MALWARE else "Instance"


def envelope(
    finding_type: str, severity: float, resource_part: dict[str, Any], service: dict[str, Any]
) -> dict[str, Any]:
    finding_id = hashlib.sha256(finding_type.encode()).hexdigest()[:32]
    return {
        "version": "0",
        "id": hashlib.sha256(f"event/{finding_type}".encode()).hexdigest()[:36],
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": ACCOUNT,
        "time": "2026-03-17T22:27:48Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "schemaVersion": "2.0",
            "accountId": ACCOUNT,
            "region": REGION,
            "partition": "aws",
            "id": finding_id,
            "arn": f"arn:aws:guardduty:{REGION}:{ACCOUNT}:detector/{DETECTOR}/finding/{finding_id}",
            "type": finding_type,
            "resource": resource_part,
            "service": {"serviceName": "guardduty", "detectorId": DETECTOR, "archived": False, **service},
            "severity": severity,
            "createdAt": "2026-03-17T22:27:48.578Z",
            "updatedAt": "2026-03-17T22:50:26.901Z",
            "title": f"{finding_type} about {INSTANCE}.",
            "description": f"GuardDuty reports {finding_type}.",
        },
    }


def resource(resource_type: str, instance_id: str = INSTANCE) -> dict[str, Any]:
    details = {
        "instanceId": instance_id,
        "instanceType": "t3.large",
        "instanceState": "running",
        "launchTime": "2026-03-17T22:13:09.000Z",
        "tags": [{"key": "Name", "value": "etl-worker"}],
        "networkInterfaces": [],
    }
    if resource_type == "AccessKey":
        return {
            "resourceType": "AccessKey",
            "accessKeyDetails": {
                "accessKeyId": "ASIAV2N8C5Q1Z9XJ3TL7",
                "principalId": f"AROAV2N8C5Q1EXAMPLE01:{instance_id}",
                "userType": "AssumedRole",
                "userName": "etl-worker-role",
            },
        }
    if resource_type == "Instance":
        return {"resourceType": "Instance", "instanceDetails": details}
    # A container or cluster finding names the host it runs on beside the workload.
    return {
        "resourceType": resource_type,
        "instanceDetails": details,
        "containerDetails": {"id": "3f5a7c9e1b2d", "name": "ingest", "image": "registry.example/ingest:1.4"},
    }


def dns_request(domain: str) -> dict[str, Any]:
    return {"actionType": "DNS_REQUEST", "dnsRequestAction": {"domain": domain, "protocol": "UDP", "blocked": False}}


def connection(direction: str, address: str = "198.51.100.66", port: int = 3333) -> dict[str, Any]:
    return {
        "actionType": "NETWORK_CONNECTION",
        "networkConnectionAction": {
            "connectionDirection": direction,
            "protocol": "TCP",
            "blocked": False,
            "localPortDetails": {"port": 22 if direction == "INBOUND" else 46797, "portName": "Unknown"},
            "remoteIpDetails": {"ipAddressV4": address, "organization": {"asn": "64500", "asnOrg": "EXAMPLE-NET"}},
            "remotePortDetails": {"port": port, "portName": "Unknown"},
        },
    }


def port_probe(address: str = "192.0.2.150", port: int = 22) -> dict[str, Any]:
    return {
        "actionType": "PORT_PROBE",
        "portProbeAction": {
            "blocked": False,
            "portProbeDetails": [
                {"localPortDetails": {"port": port, "portName": "SSH"}, "remoteIpDetails": {"ipAddressV4": address}}
            ],
        },
    }


def api_call(address: str) -> dict[str, Any]:
    return {
        "actionType": "AWS_API_CALL",
        "awsApiCallAction": {
            "api": "ListBuckets",
            "serviceName": "s3.amazonaws.com",
            "callerType": "Remote IP",
            "remoteIpDetails": {"ipAddressV4": address},
        },
    }


def process() -> dict[str, Any]:
    return {
        "name": "kworkerds",
        "executablePath": "/tmp/.x/kworkerds",
        "executableSha256": "9f3c6a1e0b7d52f48a6c3e1b9d07f25a8c4e6b3d1f09a7c5e2b8d4f6a0c3e1b7",
        "pid": 4711,
        "startTime": "2026-03-17T22:14:02.000Z",
        "user": "ec2-user",
        "userId": 1000,
        "lineage": [
            {"name": "bash", "executablePath": "/usr/bin/bash", "pid": 4690, "userId": 1000},
            {"name": "sshd", "executablePath": "/usr/sbin/sshd", "pid": 1022, "userId": 0},
        ],
    }


def scan_detections() -> dict[str, Any]:
    return {
        "scanId": "3c4f6a8e0b2d4f6a8c0e2b4d6f8a0c2e",
        "scanStartedAt": 1773786000.0,
        "scanCompletedAt": 1773786600.0,
        "triggerFindingId": "0c2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c",
        "sources": ["Bitdefender", "Amazon"],
        "scanType": "GUARDDUTY_INITIATED",
        "scanDetections": {
            "scannedItemCount": {"totalGb": 8, "files": 51234, "volumes": 1},
            "threatsDetectedItemCount": {"files": 1},
            "highestSeverityThreatDetails": {"severity": "HIGH", "threatName": "Trojan.Linux.Miner.A", "count": 1},
            "threatDetectedByName": {
                "itemCount": 1,
                "uniqueThreatNameCount": 1,
                "shortened": False,
                "threatNames": [
                    {
                        "name": "Trojan.Linux.Miner.A",
                        "severity": "HIGH",
                        "itemCount": 1,
                        "filePaths": [
                            {
                                "filePath": "/tmp/.x/kworkerds",
                                "volumeArn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-0a1b2c3d4e5f60718",
                                "hash": "9f3c6a1e0b7d52f48a6c3e1b9d07f25a8c4e6b3d1f09a7c5e2b8d4f6a0c3e1b7",
                                "fileName": "kworkerds",
                            }
                        ],
                    }
                ],
            },
        },
    }


def as_sample(event: dict[str, Any], *, flat: bool = False) -> dict[str, Any]:
    """The event as GuardDuty's "Generate sample findings" sends it: flagged flat, or inside `value`."""
    info = event["detail"]["service"].setdefault("additionalInfo", {})
    if flat:
        info.clear()
        info["sample"] = True
    else:
        info.update({"value": json.dumps({"sample": True}), "type": "default"})
    return event
