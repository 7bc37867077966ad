"""Contain, preserve and report EC2 instances named in Amazon GuardDuty findings."""

import time

TAG_PREFIX = "guardduty-responder:"


def utc_timestamp(epoch: float | None = None) -> str:
    """The one time format the responder writes (records, tags, tickets): ISO 8601, UTC, seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
