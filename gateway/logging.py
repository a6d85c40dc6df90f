"""Gateway logging: JSON lines carrying the call id sent to the services, so a request can be followed
from the gateway through every service it touches (the services log the same id, see common/logging.py,
which the gateway cannot import: it pulls in eventlet)."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

call_id_var: ContextVar[str | None] = ContextVar("gateway_call_id", default=None)
"""The call id of the request being handled by the current task."""

_HANDLER_MARK = "_edusphere_gateway_handler"
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

request_log = logging.getLogger("gateway.request")

# Built once: json.dumps with options constructs a new encoder per call, and every request logs a line.
_LINE_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, service, logger, msg, call_id, any ``extra=`` fields, exc."""

    def __init__(self, service: str = "gateway") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line."""
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        call_id = getattr(record, "call_id", None) or call_id_var.get()
        if call_id:
            line["call_id"] = call_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in line:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return _LINE_ENCODER.encode(line)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send the ``gateway`` and ``strawberry`` loggers to stderr (JSON lines by default); idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("gateway", "strawberry"):
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if not getattr(h, _HANDLER_MARK, False)]
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False


def log_graphql_request(
    *,
    call_id: str,
    operation: str | None,
    status: int,
    duration_ms: float,
    error_codes: list[str],
    rpc_calls: int = 0,
) -> None:
    """The one structured line written per GraphQL HTTP request; ``rpc_calls`` is how many service
    calls it made (the DataLoaders keep it independent of the length of the lists returned)."""
    request_log.info(
        "graphql %s %s",
        operation or "(anonymous)",
        status,
        extra={
            "call_id": call_id,
            "operation": operation,
            "status": status,
            "duration_ms": round(duration_ms, 2),
            "error_codes": error_codes,
            "rpc_calls": rpc_calls,
        },
    )
