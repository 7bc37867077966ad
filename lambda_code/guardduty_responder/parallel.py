"""Run independent AWS calls at the same time, keeping each thread's logging context."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Sized for the widest fan-out: up to 15 ENIs of one instance, or a handful of evidence steps.
_executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="responder")


def run_parallel(function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """Apply `function` to every item concurrently; results keep the items' order, errors propagate."""
    items = list(items)
    if len(items) <= 1:
        return [function(item) for item in items]
    futures = [_executor.submit(contextvars.copy_context().run, function, item) for item in items[1:]]
    # The calling thread takes the first item itself rather than waiting idle: one handoff fewer.
    try:
        first = contextvars.copy_context().run(function, items[0])
    except BaseException:
        for future in futures:
            future.exception()  # the others finish before the error propagates, as they would have
        raise
    return [first, *(future.result() for future in futures)]


A = TypeVar("A")
B = TypeVar("B")


def run_both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """Two independent calls at the same time, each result typed as its own; errors propagate."""
    later = _executor.submit(contextvars.copy_context().run, second)
    try:
        result = contextvars.copy_context().run(first)
    except BaseException:
        later.exception()  # the other finishes before the error propagates, as it would have
        raise
    return result, later.result()


C = TypeVar("C")


def run_three(first: Callable[[], A], second: Callable[[], B], third: Callable[[], C]) -> tuple[A, B, C]:
    """Three independent calls at the same time, each result typed as its own; errors propagate."""
    later = _executor.submit(contextvars.copy_context().run, run_both, second, third)
    try:
        result = contextvars.copy_context().run(first)
    except BaseException:
        later.exception()
        raise
    second_result, third_result = later.result()
    return result, second_result, third_result
