"""Structured (JSON line) logging carrying the call id nameko propagates, so one request can be
followed from the gateway through every service it touches."""

from __future__ import annotations

import json
import logging
import time

from eventlet.corolocal import local
from nameko.extensions import DependencyProvider

_current = local()


def current_call_id() -> str | None:
    return getattr(_current, "call_id", None)


class CallIdLogging(DependencyProvider):
    """Makes the running worker's call id (``<service>.<method>.<uuid>``) and its parent chain
    visible to every log record written during that worker."""

    def worker_setup(self, worker_ctx):
        _current.call_id = worker_ctx.call_id
        _current.parent_call_id = worker_ctx.immediate_parent_call_id

    def worker_teardown(self, worker_ctx):
        _current.call_id = None
        _current.parent_call_id = None

    def get_dependency(self, worker_ctx):
        return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, call ids and any ``extra=`` fields."""

    _standard = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def __init__(self, service: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.service:
            line["service"] = self.service
        call_id = getattr(record, "call_id", None) or current_call_id()
        if call_id:
            line["call_id"] = call_id
            parent = getattr(_current, "parent_call_id", None)
            if parent:
                line["parent_call_id"] = parent
        for key, value in vars(record).items():
            if key not in self._standard and key not in line:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)
