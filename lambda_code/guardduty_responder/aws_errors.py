"""Reading AWS errors: the one place that knows where a ClientError keeps its code."""

from __future__ import annotations

from botocore.exceptions import ClientError


def error_code(error: ClientError) -> str:
    """AWS's error code (`ConditionalCheckFailedException`, `InvalidInstanceID.NotFound`), or "" if none."""
    return str(error.response.get("Error", {}).get("Code", ""))


def describe_error(error: BaseException) -> str:
    """One line for people: AWS's error code and message, or the exception's type and text."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{info.get('Code', 'ClientError')}: {info.get('Message', '')}".strip()
    return f"{type(error).__name__}: {error}"
