"""Contain, preserve and report EC2 instances named in Amazon GuardDuty findings."""

TAG_PREFIX = "guardduty-responder:"
