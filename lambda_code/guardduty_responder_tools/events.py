"""What `replay` accepts, made into the EventBridge event the function receives.

People keep GuardDuty findings in several forms: the EventBridge event itself (sometimes cut down
to its `detail` and a region), the bare finding of an S3 export or the console, and `aws guardduty
get-findings` output, whose names are botocore's (`Service`, `ResourceRole`) rather than the
finding's own (`service`, `resourceRole`). Each becomes one event; a field the document holds is
never changed, only what an EventBridge delivery always carries and the document lacks is added.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guardduty_responder.guardduty import wire_names

SOURCE = "aws.guardduty"
DETAIL_TYPE = "GuardDuty Finding"


class NotAFinding(ValueError):
    """The document holds no GuardDuty finding, or more than one."""


def as_event(document: Any) -> dict[str, Any]:
    if not isinstance(document, Mapping):
        raise NotAFinding(f"expected a JSON object, got {type(document).__name__}")
    if "detail" in document:
        return _completed(dict(document))
    findings = document.get("Findings", document.get("findings"))
    if isinstance(findings, list):
        if len(findings) != 1:
            raise NotAFinding(f"holds {len(findings)} findings: replay one at a time")
        document = findings[0]
        if not isinstance(document, Mapping):
            raise NotAFinding("its finding is not a JSON object")
    if "Id" in document and "Type" in document:
        document = _finding_names(document)
    if "id" in document and "type" in document:
        return _completed({"detail": dict(document)})
    raise NotAFinding("it is neither an EventBridge GuardDuty event, a finding, nor get-findings output")


def _completed(event: dict[str, Any]) -> dict[str, Any]:
    """The envelope EventBridge always sends, where the document has none of it (its own values stay)."""
    detail = event.get("detail")
    region = detail.get("region") if isinstance(detail, Mapping) else None
    account = detail.get("accountId") if isinstance(detail, Mapping) else None
    event.setdefault("version", "0")
    event.setdefault("detail-type", DETAIL_TYPE)
    event.setdefault("source", SOURCE)
    if region is not None:
        event.setdefault("region", region)
    if account is not None:
        event.setdefault("account", account)
    return event


def _finding_names(finding: Mapping[str, Any]) -> Any:
    """botocore's names for a finding (get-findings output) turned back into the finding's own."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("guardduty")
    return wire_names(model.shape_for("Finding"), finding)
