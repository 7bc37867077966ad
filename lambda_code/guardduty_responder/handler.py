"""The Lambda entry point: the single logging boundary around the responder."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from . import logs
from .clients import AwsClients
from .config import Settings
from .finding import MalformedFindingError
from .responder import Responder

logger = logging.getLogger(__name__)

_responder: Responder | None = None
_lock = threading.Lock()


def get_responder() -> Responder:
    """The responder of this container, built on the first invocation and reused while warm."""
    global _responder
    with _lock:
        if _responder is None:
            logs.configure(os.environ.get("LOG_LEVEL", "INFO"))
            _responder = Responder(Settings.from_environ(os.environ), AwsClients())
        return _responder


def reset() -> None:
    """Forget the cached responder (a new configuration or new clients take effect on the next call)."""
    global _responder
    with _lock:
        _responder = None


def is_scheduled(event: Any) -> bool:
    """The deployment's schedule (an EventBridge scheduled event) asks for a sweep, not a finding's response.

    Anyone allowed to invoke the function can send one too: a sweep only resumes findings the ledger holds
    as claimed, from GuardDuty's own copies.
    """
    return (
        isinstance(event, dict)
        and event.get("source") == "aws.events"
        and event.get("detail-type") == "Scheduled Event"
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    responder = get_responder()
    logs.clear()
    if context is not None:
        logs.bind(request_id=getattr(context, "aws_request_id", None))
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else None
    if is_scheduled(event):
        return responder.sweep(remaining_seconds=remaining)
    try:
        summary = responder.respond(event, remaining_seconds=remaining)
    except MalformedFindingError as error:
        logger.error("rejected malformed event", extra={"field": error.field, "problem": error.problem})
        raise
    except Exception:
        # The one broad catch: log with the invocation's keys, then fail so Lambda retries / dead-letters.
        logger.exception("response failed")
        raise
    logger.info("response complete", extra={"summary": summary})
    return summary
