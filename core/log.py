"""Log lines: JSON in the cluster, readable lines on a terminal; progress bars only on a terminal."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

import structlog
from tqdm import tqdm

T = TypeVar("T")


def setup(fmt: str = "auto") -> None:
    """Configure structlog: `json`, `console`, or `auto` (console when stderr is a terminal)."""
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if console
        else (structlog.processors.JSONRenderer())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get(name: str = "ai_log_analyzer") -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)


def progress(items: Iterable[T], *, total: int, desc: str) -> Iterator[T]:
    """Iterate with a progress bar on a terminal, or with one progress log line per item otherwise."""
    if sys.stderr.isatty():
        yield from tqdm(items, total=total, desc=desc, unit="step", file=sys.stderr)
        return
    log = get()
    for done, item in enumerate(items, start=1):
        yield item
        log.info("progress", step=desc, done=done, total=total)
