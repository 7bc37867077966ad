"""GuardDuty's own copy of a finding, so that only what GuardDuty vouches for is acted on.

The detector is the one of the function's region (`GUARDDUTY_DETECTOR_ID`, else the region's only
detector from `ListDetectors`, remembered while warm). In a delegated administrator account it sees
its member accounts' findings too. The copy comes back in the finding's own JSON names (camelCase,
as in the EventBridge event's `detail`), so one parser reads both.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .aws_errors import describe_error

PERMISSIONS = ("guardduty:ListDetectors", "guardduty:GetFindings")


class GuardDutyError(RuntimeError):
    """GuardDuty could not be asked (not enabled here, refused, unreachable): nothing can be confirmed."""


class GuardDuty:
    def __init__(self, client: Any, *, detector_id: str = "") -> None:
        self._client = client
        self._detector_id = detector_id
        self._lock = threading.Lock()

    def detector_id(self) -> str:
        with self._lock:
            if not self._detector_id:
                self._detector_id = self._only_detector()
            return self._detector_id

    def start_malware_scan(self, instance_arn: str) -> str:
        """An on-demand malware scan of the instance (malware.py); its id."""
        return str(self._client.start_malware_scan(ResourceArn=instance_arn)["ScanId"])

    def malware_scans(self, *, scan_id: str = "", instance_arn: str = "", limit: int = 1) -> list[dict[str, Any]]:
        """The malware scans of this detector with that id, or of that instance, newest first."""
        key, value = ("SCAN_ID", scan_id) if scan_id else ("EC2_INSTANCE_ARN", instance_arn)
        answer = self._client.describe_malware_scans(
            DetectorId=self.detector_id(),
            FilterCriteria={"FilterCriterion": [{"CriterionKey": key, "FilterCondition": {"EqualsValue": value}}]},
            SortCriteria={"AttributeName": "scanStartTime", "OrderBy": "DESC"},
            MaxResults=limit,
        )
        return list(answer.get("Scans", []))

    def copy_of(self, finding_id: str) -> dict[str, Any] | None:
        """GuardDuty's copy of the finding as the EventBridge event's `detail` spells it; None if it has none."""
        return self.copies_of([finding_id]).get(finding_id)

    def copies_of(self, finding_ids: list[str]) -> dict[str, dict[str, Any]]:
        """GuardDuty's copies of up to 50 findings (one GetFindings), by id; a finding it does not hold is absent."""
        if not finding_ids:
            return {}
        detector_id = self.detector_id()
        try:
            found = self._client.get_findings(DetectorId=detector_id, FindingIds=finding_ids)["Findings"]
        except (ClientError, BotoCoreError, ValueError) as error:
            # ValueError: botocore could not read a value of the answer (a time out of range).
            raise GuardDutyError(
                f"GuardDuty GetFindings on detector {detector_id} failed: {describe_error(error)}"
            ) from error
        shape = self._client.meta.service_model.shape_for("Finding")
        copies = [wire_names(shape, finding) for finding in found]
        return {copy["id"]: copy for copy in copies if isinstance(copy, dict) and isinstance(copy.get("id"), str)}

    def _only_detector(self) -> str:
        try:
            detectors = self._client.list_detectors()["DetectorIds"]
        except (ClientError, BotoCoreError) as error:
            raise GuardDutyError(f"GuardDuty ListDetectors failed: {describe_error(error)}") from error
        if len(detectors) != 1:
            raise GuardDutyError(
                f"this region has {len(detectors)} GuardDuty detectors: "
                "set GUARDDUTY_DETECTOR_ID to the one to confirm findings with"
            )
        return str(detectors[0])


def wire_names(shape: Any, value: Any) -> Any:
    """A value botocore parsed (PascalCase members, datetimes) in the JSON names and forms the API sends."""
    if shape.type_name == "structure" and isinstance(value, Mapping):
        members = shape.members
        return {
            members[name].serialization.get("name", name) if name in members else name: (
                wire_names(members[name], item) if name in members else item
            )
            for name, item in value.items()
        }
    if shape.type_name == "list" and isinstance(value, list):
        return [wire_names(shape.member, item) for item in value]
    if shape.type_name == "map" and isinstance(value, Mapping):
        return {key: wire_names(shape.value, item) for key, item in value.items()}
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
    return value
